"""temporal_f1 against RadEval's f1temporal: its own test value on test_basics.py's 6 pairs
(0.500000000075, recorded by RadEval with the real stanza model), and per-pair values recorded
from RadEval's code on 17 pairs with stanza's NER replaced by a fixed table (the same table
stands in for stanza here), which exercises the union of NER entities and regex matches."""

from __future__ import annotations

import pytest
from _radeval_doubles import fake_stanza_entities
from _radeval_upstream import ids, inputs, upstream

from rrg_bench.api.scorer import ScoringContext
from rrg_bench.errors import WeightsUnavailable
from rrg_bench.metrics.temporal_f1.keywords import clean_text, regex_entities
from rrg_bench.metrics.temporal_f1.scorer import TemporalF1Scorer


class FakeStanzaScorer(TemporalF1Scorer):
    """The scorer with stanza's pipeline replaced by the fixed table (no model on this machine)."""

    calls: list[int] = []

    def unavailable_reason(self) -> str | None:
        return None

    def impl(self) -> dict:
        return {"fake": True}

    def ner_function(self, device: str):
        def ner(texts):
            self.calls.append(len(texts))
            return [fake_stanza_entities(t) for t in texts]
        return ner


def _score(scorer, hyps, refs, cache=None):
    return scorer.score(ids(len(hyps)), hyps, refs, ScoringContext(cache=cache))


def test_radeval_test_basics_value():
    data = inputs()
    result = _score(TemporalF1Scorer(ner="none"), data["hyps"][5:11], data["refs"][5:11])
    assert result.values["temporal_f1[ner=none]"] == pytest.approx(0.500000000075, rel=1e-12)


def test_stanza_path_equals_radeval_per_pair(monkeypatch, tmp_path):
    import rrg_bench.metrics.temporal_f1.stanza_ner as sn

    monkeypatch.setattr(sn, "model_facts", lambda d: {"stanza": "fake", "ner_model_sha256": "0" * 64})
    monkeypatch.setattr(sn, "locate", lambda explicit=None: tmp_path)
    data, expected = inputs(), upstream()["temporal_f1"]
    result = _score(FakeStanzaScorer(), data["hyps"], data["refs"])
    assert result.stats["f1"].tolist() == pytest.approx(expected["sample_scores"], rel=1e-12, abs=0)
    assert result.values["temporal_f1[ner=stanza]"] == pytest.approx(expected["f1"], rel=1e-12)
    # the NER table adds keywords the regex misses ("new" in "new/old" is cleaned to "newold")
    assert "new" not in regex_entities(data["refs"][13]) and "new" in expected["reference_entities"][13]


def test_stanza_entities_are_cached(monkeypatch, tmp_path):
    import rrg_bench.metrics.temporal_f1.stanza_ner as sn
    from rrg_bench.cache import AnnotationCache

    monkeypatch.setattr(sn, "model_facts", lambda d: {"stanza": "fake", "ner_model_sha256": "0" * 64})
    monkeypatch.setattr(sn, "locate", lambda explicit=None: tmp_path)
    data = inputs()
    cache = AnnotationCache(tmp_path / "c.sqlite")
    scorer = FakeStanzaScorer()
    scorer.calls.clear()
    first = _score(scorer, data["hyps"], data["refs"], cache)
    second = _score(scorer, data["hyps"], data["refs"], cache)
    assert len(scorer.calls) == 1 and second.cache_misses == 0
    assert second.values == first.values


def test_without_stanza_model_it_is_unavailable_naming_the_download(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_STANZA_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("STANZA_RESOURCES_DIR", raising=False)
    scorer = TemporalF1Scorer()
    reason = scorer.unavailable_reason()
    assert reason is not None and "stanza.download('en', package='radiology'" in reason
    with pytest.raises(WeightsUnavailable):
        _score(scorer, ["new opacity"], ["stable"])
    assert TemporalF1Scorer(ner="none").unavailable_reason() is None


def test_clean_text_keeps_radeval_order_of_rules():
    """RadEval replaces underscores before removing "(___, __, __)", so that pattern never matches."""
    assert clean_text("New\n\nopacity -- (___, __, __) un-changed!") == "New opacity ( , , ) un changed"
