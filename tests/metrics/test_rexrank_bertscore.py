"""bertscore: bert-score's matching on a local model, the CXR-Report-Metric convention.

Parity with the bert-score package (``BERTScorer`` as CXR-Report-Metric calls it) on the same
tiny random RoBERTa (6 layers like distilroberta-base, layer 5 used, distilroberta-base's
rescale baseline), IDF on and off: |Δ| <= 1e-6 per report for P, R and F.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("bert_score")

from _rexrank_doubles import build_tiny_roberta, iu_pairs, session_dir, upstream_bertscore  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.errors import UsageError, WeightsUnavailable  # noqa: E402
from rrg_bench.metrics.bertscore.model import HUB_REVISIONS, resolve_model_dir  # noqa: E402
from rrg_bench.metrics.bertscore.scorer import BertScoreScorer  # noqa: E402

N_PAIRS = 140  # three pair batches of 64, the last one partial


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return session_dir(tmp_path_factory, "tiny-roberta", build_tiny_roberta)


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No weights from this machine's own dirs or Hugging Face cache may leak in."""
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BENCH_BERTSCORE_MODEL_DIR", raising=False)
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


def _ids(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(n)]


@pytest.mark.parametrize("idf", [False, True])
def test_parity_with_bert_score_package(tiny, idf):
    hyps, refs = iu_pairs(N_PAIRS)
    expected = upstream_bertscore(tiny, hyps, refs, idf=idf)
    result = BertScoreScorer(model_dir=str(tiny), idf=idf).score(_ids(N_PAIRS), hyps, refs,
                                                                  ScoringContext(batch_size=8))
    for column in ("precision", "recall", "f1"):
        got = result.stats[column].to_numpy()
        assert np.max(np.abs(got - np.asarray(expected[column]))) <= 1e-6, column
    assert result.stats["f1"].iloc[0] == pytest.approx(1.0, abs=1e-6)  # the exact match
    # empty hypothesis: raw P=R=F=0 as in bert-score, rescaled to -b/(1-b) with the layer-5 F baseline
    assert result.stats["f1"].iloc[3] == pytest.approx(-0.8473319 / (1 - 0.8473319), rel=1e-6)
    assert any("1 empty hypotheses" in n for n in result.notes)
    column = f"bertscore[idf={str(idf).lower()},layers=5,model=distilroberta-base,rescale=true]"
    assert result.values == {column: pytest.approx(float(np.mean(expected["f1"])), abs=1e-6)}


def test_parity_without_rescaling(tiny):
    hyps, refs = iu_pairs(40)
    expected = upstream_bertscore(tiny, hyps, refs, idf=False, rescale=False)
    result = BertScoreScorer(model_dir=str(tiny), rescale=False).score(_ids(40), hyps, refs, ScoringContext())
    assert np.max(np.abs(result.stats["f1"].to_numpy() - np.asarray(expected["f1"]))) <= 1e-6
    assert (result.stats["f1"] >= 0).all()


def test_spaces_are_collapsed_before_scoring(tiny):
    scorer = BertScoreScorer(model_dir=str(tiny))
    refs = ["The heart is normal.  No effusion.", "The heart is normal. No effusion."]
    hyps = ["No  effusion.   Normal heart.", "No effusion. Normal heart."]
    stats = scorer.score(["a", "b"], hyps, refs, ScoringContext()).stats
    assert stats.loc["a", "f1"] == stats.loc["b", "f1"]


def test_repeated_scoring_reuses_the_result_and_is_keyed_by_text(tiny):
    scorer = BertScoreScorer(model_dir=str(tiny))
    hyps, refs = iu_pairs(20)
    first = scorer.score(_ids(20), hyps, refs, ScoringContext())
    again = BertScoreScorer(model_dir=str(tiny)).score(_ids(20), hyps, refs, ScoringContext())
    assert again.stats.equals(first.stats)
    changed = scorer.score(_ids(20), [hyps[0] + " Mild cardiomegaly.", *hyps[1:]], refs, ScoringContext())
    assert changed.stats["f1"].iloc[0] != first.stats["f1"].iloc[0]
    assert changed.stats["f1"].iloc[1:].equals(first.stats["f1"].iloc[1:])


def test_spec_and_columns():
    scorer = BertScoreScorer(model_dir="/nowhere")
    assert scorer.spec == "bertscore[idf=false,layers=5,model=distilroberta-base,rescale=true]"
    assert [c.id for c in scorer.columns()] == [scorer.spec]
    assert (BertScoreScorer(idf=True, layers=4).spec
            == "bertscore[idf=true,layers=4,model=distilroberta-base,rescale=true]")
    assert "model_dir" not in scorer.fingerprint()["params"]
    with pytest.raises(UsageError, match="no default layer for model 'my-encoder'; give layers=N"):
        BertScoreScorer(model="my-encoder")


def test_offline_without_weights_names_the_fix(tmp_path):
    scorer = BertScoreScorer()
    reason = scorer.unavailable_reason()
    assert reason is not None
    assert "distilroberta-base weights not found" in reason
    assert ("huggingface-cli download distilbert/distilroberta-base "
            "--revision fb53ab8802853c8e4fbdbcd0529f21fc6f459b2b") in reason
    assert str(tmp_path / "weights" / "distilroberta-base") in reason
    with pytest.raises(WeightsUnavailable, match="distilroberta-base weights not found"):
        scorer.score(["a"], ["x"], ["y"], ScoringContext())
    with pytest.raises(WeightsUnavailable, match="lacks config.json"):
        resolve_model_dir("distilroberta-base", tmp_path)
    assert "unavailable" in scorer.impl()["weights"]


def test_weights_are_found_in_our_dir_env_and_hf_cache(tiny, tmp_path, monkeypatch):
    ours = tmp_path / "weights" / "distilroberta-base"
    shutil.copytree(tiny, ours)
    assert resolve_model_dir("distilroberta-base") == ours
    shutil.rmtree(ours)
    env_root = tmp_path / "env"
    shutil.copytree(tiny, env_root / "distilroberta-base")
    monkeypatch.setenv("BENCH_BERTSCORE_MODEL_DIR", str(env_root))  # a folder holding <model>/
    assert resolve_model_dir("distilroberta-base") == env_root / "distilroberta-base"
    monkeypatch.setenv("BENCH_BERTSCORE_MODEL_DIR", str(tiny))  # the model folder itself
    assert resolve_model_dir("distilroberta-base") == tiny
    monkeypatch.delenv("BENCH_BERTSCORE_MODEL_DIR")
    repo = tmp_path / "hf" / "hub" / "models--distilbert--distilroberta-base"
    snapshot = repo / "snapshots" / ("1" * 40)
    shutil.copytree(tiny, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("1" * 40)
    assert resolve_model_dir("distilroberta-base") == snapshot  # an unpinned cached revision
    pinned = repo / "snapshots" / HUB_REVISIONS["distilroberta-base"]
    shutil.copytree(tiny, pinned)
    assert resolve_model_dir("distilroberta-base") == pinned  # the pinned revision wins
    snapshot = pinned
    scorer = BertScoreScorer()
    assert scorer.unavailable_reason() is None
    facts = scorer.impl()
    assert facts["model_dir"] == str(snapshot) and len(facts["model_files_sha256"]) == 64
    assert facts["baseline_file"] == "bert_score/rescale_baseline/en/distilroberta-base.tsv"


@pytest.mark.weights
@pytest.mark.slow
def test_real_distilroberta_equals_bert_score(monkeypatch):
    """With distilroberta-base on disk: 60 IU pairs against bert-score itself."""
    monkeypatch.undo()  # look in the machine's real weight dirs and HF cache
    try:
        model_dir = resolve_model_dir("distilroberta-base")
    except WeightsUnavailable as exc:
        pytest.skip(str(exc))
    hyps, refs = iu_pairs(60)
    expected = upstream_bertscore(model_dir, hyps, refs, idf=False)
    result = BertScoreScorer(model_dir=str(model_dir)).score(_ids(60), hyps, refs, ScoringContext())
    assert np.max(np.abs(result.stats["f1"].to_numpy() - np.asarray(expected["f1"]))) <= 1e-6


def test_default_layer_is_bert_scores():
    from bert_score.utils import model2layers

    from rrg_bench.metrics.bertscore.model import DEFAULT_LAYER, default_layers

    assert DEFAULT_LAYER == model2layers["distilroberta-base"] == default_layers("distilroberta-base")
    assert default_layers("roberta-large") == model2layers["roberta-large"]
