"""BLEU-1..4, ROUGE-L and CIDEr-D by pycocoevalcap's own scorers, and every corpus value again
from the per-study statistics table.

Why: bootstrap CIs and paired tests need the corpus values of thousands of resamples of
studies. BLEU is a corpus statistic (clipped counts summed, one brevity penalty), so the table
keeps each study's counts and :func:`bleu_from_counts` replays pycocoevalcap's formula on
their sums; METEOR keeps the jar's statistics (:mod:`.meteor`); ROUGE-L and CIDEr-D are means
of per-study scores. This module owns the table's layout, writing and reading it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rrg_bench.metrics.nlg.fast_coco import FastCiderScorer, FastRouge, NgramCounts, TextCounts, bleu_scorer
from rrg_bench.metrics.nlg.meteor import METEOR_STAT_NAMES, MeteorOutput, meteor_corpus

if TYPE_CHECKING:
    import pandas as pd

BLEU_N = 4
BLEU_COLS = ("bleu_testlen", "bleu_reflen",
             *(f"bleu_guess_{k}" for k in range(1, BLEU_N + 1)),
             *(f"bleu_correct_{k}" for k in range(1, BLEU_N + 1)))
METEOR_COLS = tuple(f"meteor_{name}" for name in METEOR_STAT_NAMES)


@dataclass
class CocoScores:
    """What the Python scorers of pycocoevalcap return, plus the per-study BLEU counts."""

    bleu: list[float]  # corpus BLEU-1..4
    bleu_counts: list[list[int]]  # per study, in BLEU_COLS order
    rouge_l: float
    rouge_l_items: Sequence[float]
    cider_d: float
    cider_d_items: list[float]
    notes: list[str]


def coco_scores(hyps: Sequence[str], refs: Sequence[str]) -> CocoScores:
    """``Bleu(4)``, ``Rouge()`` and ``Cider()`` on normalised texts, one reference per study.

    The same values as those classes (:mod:`.fast_coco`, parity-tested), each text's n-grams
    counted once for BLEU and CIDEr-D."""
    res = {i: [h] for i, h in enumerate(hyps)}
    gts = {i: [r] for i, r in enumerate(refs)}
    counted = NgramCounts.of([*hyps, *refs], BLEU_N)
    n = len(hyps)
    texts = list(zip(counted.lengths, counted.counts))
    bleu_values, bleu_counts = _bleu(texts[:n], texts[n:])
    rouge_mean, rouge_items = FastRouge().compute_score(gts, res)
    cider_mean, cider_items, notes = _cider(refs, counted.counts[:n], counted.counts[n:])
    return CocoScores(bleu_values, bleu_counts, rouge_mean, rouge_items, cider_mean, cider_items, notes)


def _bleu(hyp_counts: Sequence[tuple[int, TextCounts]],
          ref_counts: Sequence[tuple[int, TextCounts]]) -> tuple[list[float], list[list[int]]]:
    """``Bleu(4).compute_score`` (its ``BleuScorer``, cooked as ``+=`` cooks) plus the per-study counts it sums."""
    scorer = bleu_scorer(hyp_counts, [[c] for c in ref_counts], n=BLEU_N)
    values, _ = scorer.compute_score(option="closest", verbose=0)
    rows = []
    for comps in scorer.ctest:
        reflen = scorer._single_reflen(comps["reflen"], "closest", comps["testlen"])
        rows.append([comps["testlen"], reflen, *comps["guess"], *comps["correct"]])
    return list(values), rows


def _cider(refs: Sequence[str], hyp_counts: Sequence[TextCounts],
           ref_counts: Sequence[TextCounts]) -> tuple[float, list[float], list[str]]:
    """``Cider().compute_score``; when no reference has a word (its assertion would fail on an
    empty document-frequency table) every study scores 0, which is what each item would get."""
    if not any(r.split() for r in refs):
        return 0.0, [0.0] * len(refs), ["CIDEr-D: every reference is empty; all studies score 0."]
    mean, items = FastCiderScorer(hyp_counts, [[c] for c in ref_counts]).compute_score()
    return float(mean), [float(x) for x in items], []


def bleu_from_counts(testlen: float, reflen: float, guess: Sequence[float],
                     correct: Sequence[float]) -> list[float]:
    """pycocoevalcap ``BleuScorer.compute_score``'s corpus formula, same operation order."""
    small, tiny = 1e-9, 1e-15
    testlen, reflen = float(testlen), float(reflen)
    guess, correct = [float(g) for g in guess], [float(c) for c in correct]
    bleus, bleu = [], 1.0
    for k in range(BLEU_N):
        bleu *= float(correct[k] + tiny) / (guess[k] + small)
        bleus.append(bleu ** (1.0 / (k + 1)))
    ratio = (testlen + tiny) / (reflen + small)
    if ratio < 1:
        bleus = [b * math.exp(1 - 1 / ratio) for b in bleus]
    return bleus


def statistics_frame(study_ids: Sequence[str], coco: CocoScores, meteor: MeteorOutput | None) -> pd.DataFrame:
    """The per-study table, all float64 (counts are exact integers far below 2**53): one block,
    fast to resample. Without METEOR output (the jar could not score the texts) its columns are absent."""
    import pandas as pd

    columns: dict[str, Any] = dict(zip(BLEU_COLS, np.asarray(coco.bleu_counts, dtype=np.float64).T))
    if meteor is not None:
        columns["meteor"] = np.asarray(meteor.item_scores, dtype=np.float64)
        columns.update(zip(METEOR_COLS, np.asarray(meteor.item_stats, dtype=np.float64).T))
    columns["rouge_l"] = np.asarray(coco.rouge_l_items, dtype=np.float64)
    columns["cider_d"] = np.asarray(coco.cider_d_items, dtype=np.float64)
    return pd.DataFrame(columns, index=pd.Index(list(study_ids), name="study_id"))


def corpus_values(stats: pd.DataFrame) -> list[float | None]:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr-D of the studies in ``stats`` (any resample); METEOR is
    None when the statistics carry none."""
    if len(stats) == 0:
        raise ValueError("nlg: cannot aggregate zero studies")
    return _corpus_values(stats.to_numpy(dtype=np.float64), _positions(tuple(stats.columns)))


def rows_corpus_values(stats: pd.DataFrame) -> Callable[[np.ndarray], list[float | None]]:
    """``corpus_values`` of row selections (the scorer's ``rows_aggregate``), bit for bit: the table
    becomes one array once, and each selection is taken from it in the memory layout
    ``stats.iloc[rows].to_numpy()`` has (column-major), so every sum runs over the same numbers in
    the same order."""
    if len(stats) == 0:
        raise ValueError("nlg: cannot aggregate zero studies")
    by_column = np.ascontiguousarray(stats.to_numpy(dtype=np.float64).T)  # (columns, studies)
    pos = _positions(tuple(stats.columns))
    return lambda rows: _corpus_values(np.take(by_column, rows, axis=1).T, pos)


def _corpus_values(arr: np.ndarray, pos: dict[str, Any]) -> list[float | None]:
    b = arr[:, pos["bleu"]].sum(axis=0)
    bleu = bleu_from_counts(b[0], b[1], b[2:6], b[6:10])
    meteor = meteor_corpus(arr[:, pos["meteor_stats"]]) if pos["meteor_stats"] else None
    rouge = float(np.mean(arr[:, pos["rouge_l"]]))
    cider = float(np.mean(arr[:, pos["cider_d"]]))
    return [*bleu, meteor, rouge, cider]


@functools.lru_cache(maxsize=32)
def _positions(columns: tuple[str, ...]) -> dict[str, Any]:
    where = {name: i for i, name in enumerate(columns)}
    missing = [c for c in (*BLEU_COLS, "rouge_l", "cider_d") if c not in where]
    if missing:
        raise KeyError(f"nlg statistics lack columns {missing[:5]}")
    has_meteor = all(c in where for c in METEOR_COLS)
    return {"bleu": [where[c] for c in BLEU_COLS],
            "meteor_stats": [where[c] for c in METEOR_COLS] if has_meteor else [],
            "rouge_l": where["rouge_l"], "cider_d": where["cider_d"]}
