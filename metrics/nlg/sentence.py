"""Per-study NLG values a person can read (``samples.parquet``), from the per-study statistics.

Sentence BLEU-1..4 is what pycocoevalcap 1.2's ``BleuScorer.compute_score`` returns per sentence
(its ``bleu_list``): the running product of smoothed n-gram precisions, the k-th root, and the
brevity penalty of that sentence alone. It is computed here with Python's float arithmetic in the
same order, so every value equals upstream's bit for bit. METEOR per segment, ROUGE-L and
CIDEr-D per study are already statistics columns (the jar's and pycocoevalcap's own per-item
scores).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rrg_bench.metrics.nlg.maths import BLEU_N

if TYPE_CHECKING:
    import pandas as pd

_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's smoothing constants


def sentence_bleu(testlen: float, reflen: float, guess: list[float], correct: list[float]) -> list[float]:
    """BLEU-1..4 of one sentence, exactly as ``BleuScorer.compute_score`` appends to ``bleu_list``."""
    out, bleu = [], 1.0
    for k in range(BLEU_N):
        bleu *= (float(correct[k]) + _TINY) / (float(guess[k]) + _SMALL)
        out.append(bleu ** (1.0 / (k + 1)))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    if ratio < 1:
        out = [value * math.exp(1 - 1 / ratio) for value in out]
    return out


def nlg_samples(stats: pd.DataFrame, column_ids: list[str]) -> pd.DataFrame:
    """Columns ``bleu1..4``, ``meteor``, ``rouge_l``, ``cider_d`` (under their column ids), per study;
    METEOR is absent when the jar could not score the texts."""
    import pandas as pd

    rows = stats.to_dict("list")
    bleu = [sentence_bleu(t, r, [rows[f"bleu_guess_{k}"][i] for k in range(1, BLEU_N + 1)],
                          [rows[f"bleu_correct_{k}"][i] for k in range(1, BLEU_N + 1)])
            for i, (t, r) in enumerate(zip(rows["bleu_testlen"], rows["bleu_reflen"]))]
    data = {column_ids[k]: [b[k] for b in bleu] for k in range(BLEU_N)}
    if "meteor" in stats.columns:
        data[column_ids[BLEU_N]] = rows["meteor"]
    data[column_ids[BLEU_N + 1]] = rows["rouge_l"]
    data[column_ids[BLEU_N + 2]] = rows["cider_d"]
    return pd.DataFrame(data, index=stats.index)
