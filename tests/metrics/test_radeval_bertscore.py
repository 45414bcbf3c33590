"""radeval_bertscore against RadEval's RadEvalBERTScorer (vendored bert-score, transformers 5):
per-pair F1 recorded from RadEval 2.2.1 on 17 pairs (two with an empty report) with a tiny random
ModernBertModel of 3 layers (num_layers=3 plays the role of RadEval's 22, i.e. all layers)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bert_score")

from _radeval_upstream import TINY, ids, inputs, upstream  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.metrics.radeval_bertscore.scorer import RadEvalBertScoreScorer  # noqa: E402


def test_equals_radeval():
    data, expected = inputs(), upstream()["radeval_bertscore"]
    scorer = RadEvalBertScoreScorer(layers=expected["num_layers"], model_dir=str(TINY / "modernbert"))
    result = scorer.score(ids(len(data["hyps"])), data["hyps"], data["refs"], ScoringContext())
    assert result.stats["f1"].tolist() == pytest.approx(expected["f1"], abs=1e-6)
    assert result.values["radeval_bertscore[layers=3]"] == pytest.approx(expected["mean"], abs=1e-6)
    assert result.stats["f1"].iloc[11] == 0.0 and result.stats["f1"].iloc[14] == 0.0  # empty ref / hyp
    assert scorer.aggregate(result.stats.iloc[[2, 2, 5]]) == {
        "radeval_bertscore[layers=3]": pytest.approx(result.stats["f1"].iloc[[2, 2, 5]].mean())}


def test_default_spec_is_radevals_and_unavailable_names_the_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    scorer = RadEvalBertScoreScorer()
    assert scorer.spec == "radeval_bertscore" and [c.id for c in scorer.columns()] == ["radeval_bertscore"]
    assert "bench weights fetch radeval-modernbert" in (scorer.unavailable_reason() or "")
