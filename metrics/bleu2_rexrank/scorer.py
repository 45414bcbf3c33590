"""BLEU-2 as CXR-Report-Metric computes it (fast_bleu 0.0.90, one score per report).

Why our own code and not ``fast_bleu``: the package is a C++ extension with no wheels (it
compiles from source with ``-Werror``) and it scores through ctypes with OpenMP threads. The
ReXrank / RadCliQ number is defined by it, though, so this module re-implements its
``corpus_bleu`` for one reference and one hypothesis operation for operation, and
tests/metrics/test_rexrank_bleu.py shows bit-equality with fast_bleu on fuzzed inputs and with
the per-study ``bleu_score`` column of a published CXR-Report-Metric run (MoERad, IU X-Ray).

The convention, from rajpurkarlab/CXR-Report-Metric ``CXRMetric/run_eval.py``:

* tokens = ``str(text).lower().replace(".", " .").split(" ")`` with empty strings dropped
  (only spaces split; a newline stays inside its token);
* ``BLEU([reference_tokens], {"bigram": (1/2, 1/2)}).get_score([hypothesis_tokens])``:
  clipped 1- and 2-gram precisions as reduced fractions; 0 if no unigram matches; a zero
  bigram count becomes 1/(10·count) (NLTK ``method1``, epsilon 0.1); brevity penalty
  ``exp(1 - r/h)`` when ``h <= r`` (0 for an empty hypothesis); the weighted log-sum is
  accumulated in C ``long double`` (x87 80-bit on x86-64) and exponentiated in double.
  Using plain doubles changes the last bit for about a quarter of all pairs, hence
  ``numpy.longdouble`` below.
* the reported value is the mean over reports (not a corpus BLEU).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext

if TYPE_CHECKING:
    import pandas as pd

COLUMN_ID = "bleu2_rexrank"
#: fast_bleu takes weights as C ``float``; (1/2, 1/2) is exact in float32
WEIGHTS: tuple[float, ...] = (0.5, 0.5)
#: NLTK method1 epsilon as fast_bleu's ``smooth_1`` applies it: 1 / (10 * denominator)
_EPSILON_DENOMINATOR = 10


def rexrank_tokens(text: str) -> list[str]:
    """CXR-Report-Metric ``prep_reports`` for one report."""
    return [token for token in str(text).lower().replace(".", " .").split(" ") if token != ""]


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _modified_precision(reference: Sequence[str], hypothesis: Sequence[str], n: int) -> tuple[int, int]:
    """fast_bleu ``modified_precision`` as a reduced fraction (numerator 0 keeps its denominator)."""
    hyp, ref = _ngrams(hypothesis, n), _ngrams(reference, n)
    denominator = max(1, sum(hyp.values()))
    numerator = sum(min(count, ref.get(gram, 0)) for gram, count in hyp.items())
    if numerator == 0:
        return 0, denominator
    common = math.gcd(numerator, denominator)
    return numerator // common, denominator // common


def _brevity_penalty(reference_length: int, hypothesis_length: int) -> float:
    if hypothesis_length > reference_length:
        return 1.0
    if hypothesis_length == 0:
        return 0.0
    return math.exp(1 - reference_length / hypothesis_length)


def fast_bleu_sentence(reference: Sequence[str], hypothesis: Sequence[str],
                       weights: Sequence[float] = WEIGHTS) -> float:
    """``fast_bleu.BLEU([reference], {k: weights}, smoothing_func=1).get_score([hypothesis])[k][0]``."""
    precisions = [_modified_precision(reference, hypothesis, n) for n in range(1, len(weights) + 1)]
    bp = _brevity_penalty(len(reference), len(hypothesis))
    if precisions[0][0] == 0:
        return 0.0
    total = 0.0  # C double, each term added in long double and rounded back
    for weight, (numerator, denominator) in zip(weights, precisions):
        if numerator == 0:
            numerator, denominator = 1, denominator * _EPSILON_DENOMINATOR
        term = np.longdouble(float(np.float32(weight))) * np.log(np.longdouble(numerator) / np.longdouble(denominator))
        total = float(np.longdouble(total) + term)
    return bp * math.exp(total)


def bleu2_rexrank(reference: str, hypothesis: str) -> float:
    """Per-report BLEU-2 of CXR-Report-Metric (ReXrank's "BLEU")."""
    return fast_bleu_sentence(rexrank_tokens(reference), rexrank_tokens(hypothesis))


class Bleu2RexrankScorer(Scorer):
    """ReXrank / CXR-Report-Metric BLEU-2: fast_bleu per report, mean over reports."""

    name = "bleu2_rexrank"
    version = "1"

    def columns(self) -> list[Column]:
        return [Column(
            id=COLUMN_ID, display="BLEU-2 (ReXrank)",
            convention=("per-report BLEU-2 of fast_bleu 0.0.90 (weights 1/2,1/2, NLTK method1 smoothing, "
                        "brevity penalty) on lower().replace('.', ' .').split(' ') tokens, mean over reports "
                        "(CXR-Report-Metric bleu_score / ReXrank BLEU)"),
        )]

    def impl(self) -> dict[str, Any]:
        return {"implementation": f"metrics.bleu2_fast v{self.version}", "equivalent_to": "fast-bleu==0.0.90"}

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        if not len(study_ids) == len(hyps) == len(refs):
            raise ValueError(f"bleu2_rexrank: {len(study_ids)} ids, {len(hyps)} hypotheses, {len(refs)} references")
        values = np.array([bleu2_rexrank(r, h) for r, h in zip(refs, hyps)], dtype=np.float64)
        stats = pd.DataFrame({"bleu2": values}, index=pd.Index(list(study_ids), name="study_id"))
        return ScoreResult(values=self.aggregate(stats), stats=stats)

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        return stats[["bleu2"]].rename(columns={"bleu2": COLUMN_ID})

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["bleu2"].to_numpy(dtype=np.float64)
        return {COLUMN_ID: float(np.mean(values)) if len(values) else float("nan")}
