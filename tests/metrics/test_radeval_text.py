"""radeval_text: RadEval's own BLEU (whitespace tokens, pycocoevalcap BleuScorer) and rouge_score
ROUGE-1/2/L, against RadEval's text-only regression fixture (expected_scores_cpu.json, 5 pairs,
values RadEval's CI asserts) and test_basics.py (6 pairs) — numbers recorded by RadEval itself."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("rouge_score", reason="rouge-score is not installed")

from _radeval_upstream import FIXTURES, ids, inputs  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.metrics.radeval_text.scorer import RADEVAL_KEYS, RadEvalTextScorer, per_sample_bleu4  # noqa: E402


def _score(hyps, refs):
    return RadEvalTextScorer().score(ids(len(hyps)), hyps, refs, ScoringContext())


def test_regression_fixture_reproduced():
    samples = json.loads((FIXTURES / "regression_samples.json").read_text())
    expected = json.loads((FIXTURES / "expected_scores_cpu.json").read_text())
    result = _score(samples["hyps"], samples["refs"])
    by_key = {RADEVAL_KEYS[cid]: v for cid, v in result.values.items()}
    for mode in ("default", "detailed"):  # RadEval rounds these to 4 d.p. before its test compares them
        for key, value in expected[mode].items():
            assert math.isclose(round(by_key[key], 4), value, rel_tol=1e-4), (mode, key)
    per_sample = {"bleu": per_sample_bleu4(result.stats), **{t: result.stats[t].tolist()
                                                             for t in ("rouge1", "rouge2", "rougeL")}}
    for key, values in expected["per_sample"].items():
        assert per_sample[key] == pytest.approx(values, rel=1e-12, abs=0), key


def test_test_basics_values():
    """radeval==2.2.1 tests/test_basics.py: bleu 0.16681006823938177, rouge1 = rougeL
    0.44681719607092746, rouge2 0.4205128205128205."""
    data = inputs()
    result = _score(data["hyps"][5:11], data["refs"][5:11])
    by_key = {RADEVAL_KEYS[cid]: v for cid, v in result.values.items()}
    assert by_key["bleu"] == pytest.approx(0.16681006823938177, rel=1e-12)
    assert by_key["rouge1"] == pytest.approx(0.44681719607092746, rel=1e-12)
    assert by_key["rougeL"] == pytest.approx(0.44681719607092746, rel=1e-12)
    assert by_key["rouge2"] == pytest.approx(0.4205128205128205, rel=1e-12)


def test_aggregate_recomputes_any_resample_and_never_shares_nlg_columns():
    data = inputs()
    scorer = RadEvalTextScorer()
    result = scorer.score(ids(len(data["hyps"])), data["hyps"], data["refs"], ScoringContext())
    assert scorer.aggregate(result.stats) == result.values
    rows = [0, 3, 3, 7, 12, 16]
    sub = scorer.score([f"r{i}" for i in range(len(rows))], [data["hyps"][i] for i in rows],
                       [data["refs"][i] for i in rows], ScoringContext())
    assert scorer.aggregate(result.stats.iloc[rows]) == pytest.approx(sub.values, rel=1e-12)
    assert not {c.id for c in scorer.columns()} & {"bleu4[tok=ptb]", "rouge_l[tok=ptb]"}
    assert result.stats.loc["s16"].notna().all()  # empty references and hypotheses score without error
