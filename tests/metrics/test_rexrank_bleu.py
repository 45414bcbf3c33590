"""bleu2_rexrank: CXR-Report-Metric's BLEU-2 (fast_bleu 0.0.90, per report) re-implemented.

Parity is bit-for-bit: against the fast_bleu package itself on fuzzed inputs (when it is
installed; it builds from source), and against the per-study ``bleu_score`` column that
CXR-Report-Metric wrote for MoERad on IU X-Ray (always).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest

from helpers import shared_dir
from rrg_bench.api.scorer import ScoringContext
from rrg_bench.metrics.bleu2_rexrank.scorer import Bleu2RexrankScorer, bleu2_rexrank, fast_bleu_sentence, rexrank_tokens

MOERAD = shared_dir() / "data" / "external_predictions" / "MoERad"


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def moerad() -> dict[str, list[dict[str, str]]]:
    if not (MOERAD / "report_scores.csv").is_file():
        pytest.skip(f"MoERad files not found at {MOERAD} (set BENCH_SHARED)")
    return {name: _read(MOERAD / f"{name}.csv") for name in ("preds", "gts", "report_scores")}


def test_tokens_follow_prep_reports():
    # lower-cased, "." split off, only spaces split (a newline stays inside its token), empties dropped
    assert rexrank_tokens("The lungs are clear.  No effusion.") == ["the", "lungs", "are", "clear", ".", "no",
                                                                   "effusion", "."]
    assert rexrank_tokens("Clear.\nNo effusion") == ["clear", ".\nno", "effusion"]
    assert rexrank_tokens("") == []
    assert rexrank_tokens("x-ray 1.5 cm") == ["x-ray", "1", ".5", "cm"]


def test_hand_computed_values():
    ref = rexrank_tokens("the heart is normal")
    assert fast_bleu_sentence(ref, ref) == 1.0
    assert fast_bleu_sentence(ref, []) == 0.0
    assert fast_bleu_sentence([], ref) == 0.0
    assert fast_bleu_sentence(ref, ["lungs"]) == 0.0  # no unigram match: 0 before smoothing
    # 3 of 4 unigrams, 0 of 3 bigrams -> smoothed 1/30; no brevity penalty (equal lengths)
    got = fast_bleu_sentence(ref, rexrank_tokens("heart the normal lungs"))
    assert got == pytest.approx(np.sqrt(0.75 * (1 / 30)), rel=1e-12)
    # shorter hypothesis: brevity penalty exp(1 - 4/2)
    assert fast_bleu_sentence(ref, ["the", "heart"]) == pytest.approx(np.exp(1 - 2.0), rel=1e-12)


def test_bit_identical_to_fast_bleu_on_fuzzed_reports():
    fast_bleu = pytest.importorskip("fast_bleu", reason="fast-bleu 0.0.90 (C++ extension) is not installed")
    rng = random.Random(7)
    words = ("the a lungs are clear . no effusion , heart size normal pneumothorax x-ray\nleft "
             "THE Clear. 1.5 cm").split(" ") + ["", "  "]
    weights = {"bigram": (1 / 2.0, 1 / 2.0)}
    mismatches = []
    for _ in range(150):  # one fast_bleu call per reference (each call starts OpenMP threads)
        ref = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        hyps = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 30))) for _ in range(20)]
        expected = fast_bleu.BLEU([rexrank_tokens(ref)], weights).get_score([rexrank_tokens(h) for h in hyps])
        mismatches += [(ref, h) for h, e in zip(hyps, expected["bigram"]) if bleu2_rexrank(ref, h) != e]
    assert not mismatches, mismatches[:3]


def test_moerad_per_study_bleu2_reproduced_exactly(moerad):
    """CXR-Report-Metric's bleu_score for all 590 MoERad studies, bit for bit (rows are in
    preds.csv order: report_scores.csv numbers them 0..589 and repeats the prediction text)."""
    preds, gts, scores = moerad["preds"], moerad["gts"], moerad["report_scores"]
    assert len(preds) == len(gts) == len(scores) == 590
    assert [p["report"] for p in preds] == [s["report"] for s in scores]
    assert [p["study_id"] for p in preds] == [g["study_id"] for g in gts]
    got = [bleu2_rexrank(g["report"], p["report"]) for g, p in zip(gts, preds)]
    expected = [float(s["bleu_score"]) for s in scores]
    assert got == expected


def test_scorer_stats_and_aggregate():
    scorer = Bleu2RexrankScorer()
    assert scorer.spec == "bleu2_rexrank" and [c.id for c in scorer.columns()] == ["bleu2_rexrank"]
    refs = ["The heart is normal.", "No effusion.", "Clear lungs."]
    hyps = ["The heart is normal.", "", "clear lungs ."]
    result = scorer.score(["a", "b", "c"], hyps, refs, ScoringContext())
    assert list(result.stats.index) == ["a", "b", "c"]
    assert result.stats["bleu2"].tolist() == [1.0, 0.0, 1.0]
    assert result.values == {"bleu2_rexrank": pytest.approx(2 / 3)}
    assert scorer.aggregate(result.stats.iloc[[0, 0, 1]]) == {"bleu2_rexrank": pytest.approx(2 / 3)}
