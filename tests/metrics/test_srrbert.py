"""srrbert against RadEval's SRRBert: per-report label vectors, weighted P/R/F1, per-sample values
and per-label scores recorded from RadEval 2.2.1 (transformers 5, scikit-learn 1.8) on 17 report
pairs, with a tiny random BertForSequenceClassification (163 outputs), a BertTokenizer and a small
punkt_tab parameter set (tests/fixtures/radeval/tiny; record_upstream.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")
nltk = pytest.importorskip("nltk")

from _radeval_upstream import TINY, ids, inputs, upstream  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.metrics.srrbert import labels as L  # noqa: E402
from rrg_bench.metrics.srrbert.scorer import SRRBertScorer  # noqa: E402


@pytest.fixture()
def punkt(monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [str(TINY / "nltk_data"), *nltk.data.path])
    from nltk.tokenize import _get_punkt_tokenizer

    _get_punkt_tokenizer.cache_clear() if hasattr(_get_punkt_tokenizer, "cache_clear") else None
    yield


def _scorer() -> SRRBertScorer:
    return SRRBertScorer(model_dir=str(TINY / "srrbert"), tokenizer_dir=str(TINY / "srrbert_tokenizer"))


def test_sentences_equal_radeval(punkt):
    for text, expected in upstream()["srrbert"]["sentences"].items():
        assert L.split_sentences(text) == expected, text


def test_equals_radeval(punkt):
    data, expected = inputs(), upstream()["srrbert"]
    result = _scorer().score(ids(len(data["hyps"])), data["hyps"], data["refs"], ScoringContext(batch_size=3))
    ref_bits = L.decode(result.stats["ref_labels"]).tolist()
    assert ref_bits == [expected["report_labels"][t] for t in data["refs"]]
    assert L.decode(result.stats["hyp_labels"]).tolist() == [expected["report_labels"][t] for t in data["hyps"]]
    weighted = expected["weighted avg"]
    for key, theirs in (("f1", "f1-score"), ("precision", "precision"), ("recall", "recall")):
        assert result.values[f"srrbert_weighted_{key}"] == pytest.approx(weighted[theirs], rel=1e-12)
        assert result.stats[f"sample_{key}"].tolist() == pytest.approx(expected[f"sample_{key}"], rel=1e-12)
    assert set(result.per_label) == set(expected["label_scores"])
    for label, row in expected["label_scores"].items():
        assert result.per_label[label]["f1"] == pytest.approx(row["f1-score"], rel=1e-12)
        assert result.per_label[label]["support"] == row["support"]
    assert 0.3 < weighted["f1-score"] < 0.95  # the random labeller separates reports: a real comparison


def test_aggregate_recomputes_resamples(punkt):
    data = inputs()
    scorer = _scorer()
    result = scorer.score(ids(len(data["hyps"])), data["hyps"], data["refs"], ScoringContext())
    assert scorer.aggregate(result.stats) == result.values
    sub = result.stats.iloc[[1, 1, 4, 9]]
    again = scorer.score(ids(4), [data["hyps"][i] for i in (1, 1, 4, 9)], [data["refs"][i] for i in (1, 1, 4, 9)],
                         ScoringContext())
    assert scorer.aggregate(sub) == pytest.approx(again.values, rel=1e-12)


def test_without_punkt_it_is_unavailable(monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [])
    reason = _scorer().unavailable_reason()
    assert reason is not None and "punkt_tab" in reason
