"""sembscore: cosine of CheXbert [CLS] embeddings, on our CheXbert module.

A tiny random CheXbert checkpoint in upstream's layout (tests/metrics/_rexrank_doubles.py);
parity with CXR-Report-Metric's encode.py + add_semb_col re-traced on the same checkpoint:
|Δ| <= 1e-6 per report (padding differs between the two batchings, so bits may differ).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _rexrank_doubles import build_tiny_chexbert, chexbert_paths, iu_pairs, session_dir, upstream_semb_scores  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.cache import AnnotationCache  # noqa: E402
from rrg_bench.errors import WeightsUnavailable  # noqa: E402
from rrg_bench.metrics.sembscore.scorer import SembScoreScorer, semb_cosine  # noqa: E402


@pytest.fixture(scope="module")
def chexbert(tmp_path_factory):
    return chexbert_paths(session_dir(tmp_path_factory, "tiny-chexbert", build_tiny_chexbert))


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("BENCH_CHEXBERT_CKPT", raising=False)
    monkeypatch.delenv("BENCH_BERT_BASE_UNCASED_DIR", raising=False)
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


def _scorer(paths) -> SembScoreScorer:
    return SembScoreScorer(ckpt=str(paths["ckpt"]), tokenizer=str(paths["tokenizer"]), config=str(paths["config"]))


def test_parity_with_cxr_report_metric_encode(chexbert):
    hyps, refs = iu_pairs(50)
    expected = np.asarray(upstream_semb_scores(chexbert, refs, hyps))
    result = _scorer(chexbert).score([f"s{i}" for i in range(50)], hyps, refs, ScoringContext(batch_size=7))
    got = result.stats["semb"].to_numpy()
    assert np.max(np.abs(got - expected)) <= 1e-6
    assert got.std() > 0.05  # the tiny model's embeddings do differ between reports
    assert got[0] == pytest.approx(1.0, abs=1e-6)
    assert result.values == {"sembscore": pytest.approx(float(expected.mean()), abs=1e-6)}


def test_embeddings_are_cached_by_normalised_text(chexbert, tmp_path):
    hyps, refs = iu_pairs(12)
    cache = AnnotationCache(tmp_path / "annotations")
    first = _scorer(chexbert).score([f"s{i}" for i in range(12)], hyps, refs, ScoringContext(cache=cache))
    unique = len({" ".join(t.split()) for t in refs + hyps})
    assert (first.cache_hits, first.cache_misses) == (0, unique)
    again = _scorer(chexbert).score([f"s{i}" for i in range(12)], hyps, refs, ScoringContext(cache=cache))
    assert (again.cache_hits, again.cache_misses) == (unique, 0)
    assert again.stats.equals(first.stats)


def test_cosine_is_upstreams_float32_expression():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert semb_cosine(a, a) == pytest.approx(1.0, abs=1e-7)
    assert semb_cosine(a, -a) == pytest.approx(-1.0, abs=1e-7)
    assert semb_cosine(np.array([1, 0]), np.array([0, 1])) == 0.0


def test_spec_excludes_paths_and_offline_message_names_the_checkpoint(chexbert):
    scorer = _scorer(chexbert)
    assert scorer.spec == "sembscore" and [c.id for c in scorer.columns()] == ["sembscore"]
    assert scorer.fingerprint()["params"] == {}
    assert scorer.impl()["checkpoint_sha256"]
    missing = SembScoreScorer()
    reason = missing.unavailable_reason()
    assert reason is not None and "chexbert" in reason and "bench weights fetch chexbert" in reason
    with pytest.raises(WeightsUnavailable):
        missing.score(["a"], ["x"], ["y"], ScoringContext())


@pytest.mark.weights
@pytest.mark.slow
def test_real_checkpoint_equals_upstream_encode(monkeypatch):
    """With the real chexbert.pth and bert-base-uncased vocab on disk: 30 IU pairs."""
    monkeypatch.undo()
    from rrg_bench import weights
    from rrg_bench.metrics.chexbert.model import BERT_BASE_UNCASED

    try:
        ckpt, tok_dir = weights.resolve("chexbert"), weights.resolve("bert-base-uncased")
    except WeightsUnavailable as exc:
        pytest.skip(str(exc))
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp)
        (cfg / "config.json").write_text(json.dumps(BERT_BASE_UNCASED))
        paths = {"ckpt": ckpt, "tokenizer": tok_dir / "vocab.txt", "config": cfg}
        hyps, refs = iu_pairs(30)
        expected = np.asarray(upstream_semb_scores(paths, refs, hyps))
    result = SembScoreScorer(ckpt=str(ckpt), tokenizer=str(tok_dir)).score(
        [f"s{i}" for i in range(30)], hyps, refs, ScoringContext())
    assert np.max(np.abs(result.stats["semb"].to_numpy() - expected)) <= 1e-6
