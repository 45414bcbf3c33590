"""The adapter's model path, end to end, on tiny random RadGraph models of the real classes
(built offline by ``_radgraph_doubles.build_tiny_radgraph_model``)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

pytest.importorskip("radgraph")

from _radgraph_doubles import TINY_BACKBONE_NAME, build_tiny_radgraph_model, package_layout  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.cache import AnnotationCache  # noqa: E402
from rrg_bench.errors import WeightsUnavailable  # noqa: E402
from rrg_bench.metrics.radgraph.adapter import RadGraphAnnotator, locate_model, resolve_backbone  # noqa: E402
from rrg_bench.metrics.radgraph.rewards import LEVELS  # noqa: E402
from rrg_bench.metrics.radgraph.scorer import RadGraphScorer  # noqa: E402

HYPS = ["No pneumothorax. Mild cardiomegaly with left pleural effusion.",
        "Heart size is normal.\nLungs are clear.",
        "",
        "no acute cardiopulmonary abnormality",
        "Endotracheal tube terminates 2 cm above the carina (stable).",
        "Mild cardiomegaly with left pleural effusion.",
        "There is no focal consolidation, pleural effusion or pneumothorax."]
REFS = ["Mild cardiomegaly with left pleural effusion.",
        "Heart size is normal. Lungs are clear.",
        "The lungs are clear.",
        "no acute cardiopulmonary abnormality",
        "ET tube 2 cm above the carina; bibasilar atelectasis.",
        "",
        "No focal consolidation. No pleural effusion or pneumothorax."]


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "bench-cache"))  # sha256 memo records
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-radgraph")
    return {model_type: build_tiny_radgraph_model(root, model_type, seed=i)
            for i, model_type in enumerate(("radgraph", "radgraph-xl", "modern-radgraph-xl"))}


def _score(scorer: RadGraphScorer, hyps: Sequence[str], refs: Sequence[str], cache=None):
    ids = [f"s{i}" for i in range(len(hyps))]
    return scorer.score(ids, list(hyps), list(refs), ScoringContext(cache=cache))


@pytest.mark.parametrize("model_type", ["radgraph", "radgraph-xl", "modern-radgraph-xl"])
def test_adapter_equals_the_package_end_to_end(model_type, tiny_models, tmp_path):
    from radgraph import F1RadGraph, RadGraph

    model_dir = tiny_models[model_type]
    package_root = package_layout(model_dir, model_type, tmp_path / "package")

    texts = [t for t in HYPS + REFS if t]
    ours = RadGraphAnnotator(locate_model(model_type, model_dir)).annotate(texts)
    theirs = RadGraph(model_type=model_type, model_cache_dir=str(package_root))(texts)
    assert ours == [theirs[str(i)] for i in range(len(texts))]
    # a random model that labels nothing would make every comparison below vacuous
    assert sum(len(a["entities"]) for a in ours) > 10
    assert sum(len(e["relations"]) for a in ours for e in a["entities"].values()) > 0

    scorer = RadGraphScorer(model=model_type, model_dir=str(model_dir))
    assert scorer.unavailable_reason() is None
    result = _score(scorer, HYPS, REFS)
    mean_reward, reward_lists, _, _ = F1RadGraph(reward_level="all", model_type=model_type,
                                                 model_cache_dir=str(package_root))(refs=REFS, hyps=HYPS)
    samples = scorer.per_study(result.stats)  # what samples.parquet shows per study
    for level, package_list, package_mean in zip(LEVELS, reward_lists, mean_reward):
        assert result.stats[level].tolist() == package_list
        assert result.values[f"radgraph_f1[model={model_type},level={level}]"] == package_mean
        assert samples[f"radgraph_f1[model={model_type},level={level}]"].tolist() == package_list
    assert any(0 < v < 1 for level in LEVELS for v in result.stats[level])
    assert result.stats["empty"].tolist() == [False, False, True, False, False, True, False]


def test_inference_runs_under_inference_mode_and_never_twice_for_a_text(tiny_models, tmp_path):
    import torch

    scorer = RadGraphScorer(model="radgraph-xl", model_dir=str(tiny_models["radgraph-xl"]))
    annotator = scorer.annotator("cpu")
    modes: list[bool] = []
    texts_seen: list[int] = []  # texts per forward pass of the package's model (batched: several)

    def hook(_module, args, _output):
        modes.append(torch.is_inference_mode_enabled())
        texts_seen.append(args[0]["bert"]["token_ids"].shape[0])

    annotator.load().model._embedder.register_forward_hook(hook)
    with AnnotationCache(tmp_path / "cache") as cache:
        cold = _score(scorer, HYPS, REFS, cache)
        distinct = {t for h, r in zip(HYPS, REFS) if h and r for t in (h, r)}
        assert sum(texts_seen) == cold.cache_misses == len(distinct) and modes and all(modes)

        # a fresh scorer (another run) finds everything in the cache and never loads the model
        warm_scorer = RadGraphScorer(model="radgraph-xl", model_dir=str(tiny_models["radgraph-xl"]))
        warm = _score(warm_scorer, HYPS, REFS, cache)
    assert warm_scorer.annotator("cpu")._radgraph is None
    assert (warm.cache_hits, warm.cache_misses) == (cold.cache_misses, 0)
    assert warm.values == cold.values and warm.stats.equals(cold.stats)


@pytest.mark.filterwarnings("ignore:Document .* has a sentence with a single token")
def test_whitespace_only_text_scores_zero_where_the_package_crashes(tiny_models, tmp_path):
    from radgraph import RadGraph

    model_dir = tiny_models["radgraph-xl"]
    with pytest.raises(AssertionError):  # radgraph 0.1.18 cannot build an instance with no token
        layout = package_layout(model_dir, "radgraph-xl", tmp_path)
        RadGraph(model_type="radgraph-xl", model_cache_dir=str(layout))([" \n "])
    result = _score(RadGraphScorer(model_dir=str(model_dir)), [" \n ", "Mild cardiomegaly."],
                    ["Mild cardiomegaly.", "Mild cardiomegaly."])
    assert result.stats["empty"].tolist() == [True, False]
    assert result.stats.loc["s0", list(LEVELS) + ["er_mean"]].tolist() == [0.0] * 4
    assert result.notes == ["1 pair(s) with an empty hypothesis or reference scored 0 at every level (as F1RadGraph)"]


def test_columns_spec_and_fingerprint(tiny_models):
    scorer = RadGraphScorer(model_dir=str(tiny_models["radgraph-xl"]))
    assert [c.id for c in scorer.columns()] == [
        "radgraph_f1[model=radgraph-xl,level=simple]", "radgraph_f1[model=radgraph-xl,level=partial]",
        "radgraph_f1[model=radgraph-xl,level=complete]", "radgraph_er_mean[model=radgraph-xl]"]
    assert scorer.columns()[-1].display == "RadGraph (ER mean)"
    assert scorer.spec == "radgraph[model=radgraph-xl]"  # where the weights live is not part of it
    impl = scorer.fingerprint()["impl"]
    assert impl["backbone"] == TINY_BACKBONE_NAME and len(impl["weights_sha256"]) == 64
    assert RadGraphScorer(model="radgraph").spec == "radgraph[model=radgraph]"


def test_missing_files_are_named(tiny_models, tmp_path):
    broken = tmp_path / "radgraph-xl"
    shutil.copytree(tiny_models["radgraph-xl"], broken)
    (broken / "weights.th").unlink()
    reason = RadGraphScorer(model_dir=str(broken)).unavailable_reason()
    assert reason and "weights.th missing in" in reason and str(broken) in reason

    shutil.copyfile(tiny_models["radgraph-xl"] / "weights.th", broken / "weights.th")
    shutil.rmtree(broken / "backbone")
    reason = RadGraphScorer(model_dir=str(broken)).unavailable_reason()
    assert reason and TINY_BACKBONE_NAME in reason and str(broken / "backbone") in reason

    reason = RadGraphScorer(model_dir=str(tmp_path / "nowhere")).unavailable_reason()
    assert reason and "nowhere" in reason
    with pytest.raises(WeightsUnavailable):
        locate_model("radgraph-xl", tmp_path / "nowhere")


def test_backbone_found_in_the_hugging_face_cache(tiny_models, tmp_path, monkeypatch):
    import huggingface_hub.constants

    model_dir = tiny_models["radgraph-xl"]
    repo = tmp_path / "hub" / ("models--" + TINY_BACKBONE_NAME.replace("/", "--"))
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(model_dir / "backbone", snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    bare = tmp_path / "bare" / "radgraph-xl"
    shutil.copytree(model_dir, bare, ignore=shutil.ignore_patterns("backbone"))
    assert resolve_backbone("radgraph-xl", bare, TINY_BACKBONE_NAME) == snapshot
    result = _score(RadGraphScorer(model_dir=str(bare)), ["Mild cardiomegaly."], ["Mild cardiomegaly."])
    assert result.values["radgraph_f1[model=radgraph-xl,level=simple]"] in (0.0, 1.0)


# ------------------------------------------------------------------ real weights (skipped here)

SIX_PAIR_REFS = ["no acute cardiopulmonary abnormality",
                 "et tube terminates 2 cm above the carina retraction by several centimeters is recommended for "
                 "more optimal placement bibasilar consolidations better assessed on concurrent chest ct",
                 "there is no significant change since the previous exam the feeding tube and nasogastric tube have "
                 "been removed",
                 "unchanged mild pulmonary edema no radiographic evidence pneumonia",
                 "no evidence of acute pulmonary process moderately large size hiatal hernia",
                 "no acute intrathoracic process"]
SIX_PAIR_HYPS = ["no acute cardiopulmonary abnormality",
                 "endotracheal tube terminates 2 5 cm above the carina bibasilar opacities likely represent "
                 "atelectasis or aspiration",
                 "there is no significant change since the previous exam",
                 "unchanged mild pulmonary edema and moderate cardiomegaly",
                 "no evidence of acute cardiopulmonary process moderate hiatal hernia",
                 "no acute cardiopulmonary process"]


@pytest.mark.weights
def test_published_six_pair_triple_with_the_real_v1_model():
    scorer = RadGraphScorer(model="radgraph")
    reason = scorer.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    result = _score(scorer, SIX_PAIR_HYPS, SIX_PAIR_REFS)
    # radgraph 0.1.18 tests/radgraph_test.py
    assert tuple(result.values[f"radgraph_f1[model=radgraph,level={lvl}]"] for lvl in LEVELS) == (
        0.6238095238095238, 0.5111111111111111, 0.5011204481792717)
    assert result.stats["simple"].tolist() == [1.0, 0.4, 0.5714285714285715, 0.8, 0.5714285714285715, 0.4]
