"""METEOR 1.5: the jar as a safe subprocess, sharded over several, and its scores recomputed from its statistics.

Why both halves live here: the jar reports, per study, the 23 statistics of its
``MeteorStats`` line; :func:`meteor_from_stats` and :func:`meteor_corpus` replay the jar's own
arithmetic on them, so a bootstrap resample of studies gets the corpus METEOR the jar would
print, without starting a JVM again. The process half keeps pycocoevalcap's protocol but not
its hazards (see :class:`MeteorProcess`), and :func:`score_sharded` spreads the ``SCORE``
lines over several jars without changing a single byte of what the jar computes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from rrg_bench.metrics.nlg.java import METEOR_JAR, JavaProcess, NLGSubprocessError, one_line, require_java

#: METEOR 1.5's statistics line, in the jar's order (MeteorStats.toString)
METEOR_STAT_NAMES: tuple[str, ...] = (
    "test_len", "ref_len", "test_func", "ref_func",
    *(f"s{s}_{side}_{kind}" for s in range(1, 5)
      for side, kind in (("test", "content"), ("ref", "content"), ("test", "function"), ("ref", "function"))),
    "chunks", "test_word_matches", "ref_word_matches",
)
#: ``-l en`` defaults printed by the jar: alpha, beta, gamma, delta; module weights
METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA, METEOR_DELTA = 0.85, 0.2, 0.6, 0.75
METEOR_WEIGHTS = (1.0, 0.6, 0.8, 0.6)  # exact, stem, synonym, paraphrase

#: the jar's arguments as pycocoevalcap gives them: stdin/stdout mode, English, normalise and lower-case
METEOR_ARGS = ("-", "-", "-stdio", "-l", "en", "-norm")

Advance = Callable[[int], Any]


@dataclass
class MeteorOutput:
    corpus: float
    item_scores: list[float]
    item_stats: list[list[float]]


def _meteor_field(text: str) -> str:
    """One ``|||``-separated field: no line break (it would end the protocol line), no ``|||``."""
    text = one_line(text)
    while "|||" in text:
        text = text.replace("|||", "")
    return text


def score_line(hyp: str, ref: str) -> str:
    """pycocoevalcap's ``SCORE`` line for one pair (its ``_stat``), made safe for the line protocol."""
    # line breaks out first, then pycocoevalcap's own hypothesis handling
    hyp = _meteor_field(one_line(hyp).replace("|||", "").replace("  ", " "))
    return " ||| ".join(("SCORE", _meteor_field(ref), hyp)) + "\n"


def _check_pairs(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs) or not hyps:
        raise ValueError("METEOR needs equally many (>0) hypotheses and references")


class MeteorProcess(JavaProcess):
    """One METEOR 1.5 jar in ``-stdio`` mode, spoken to exactly as pycocoevalcap's ``Meteor``.

    Differences from pycocoevalcap's wrapper, all about process safety: line breaks and
    ``|||`` are removed from hypotheses *and* references; lines are written from a thread so
    the JVM never waits for us; and everything :class:`~.java.JavaProcess` guarantees
    (stderr drained, a watchdog, killed on ``close()``, on leaving a ``with`` block, and at
    interpreter exit). The jar keeps no state between lines (a ``SCORE`` line's statistics do
    not depend on earlier lines, ``EVAL`` starts a fresh aggregate), so one process can serve
    any number of calls.
    """

    what = "METEOR"
    exit_hint = "; it needs Java and a 2 GB heap (-Xmx2G)"

    def __init__(self, *, timeout_s: float = 600.0, java: str | None = None) -> None:
        super().__init__(self.command(java or require_java()), cwd=METEOR_JAR.parent, timeout_s=timeout_s)

    def command(self, java: str) -> list[str]:
        """pycocoevalcap's command line for the jar."""
        return [java, "-jar", "-Xmx2G", str(METEOR_JAR), *METEOR_ARGS]

    def score(self, hyps: Sequence[str], refs: Sequence[str], advance: Advance | None = None) -> MeteorOutput:
        """Per-item statistics (``SCORE``), then per-item and corpus scores (``EVAL``), within one timeout."""
        deadline = time.monotonic() + self.timeout_s
        return self.evaluate(self.segment_stats(hyps, refs, advance, deadline=deadline), deadline=deadline)

    def segment_stats(self, hyps: Sequence[str], refs: Sequence[str], advance: Advance | None = None, *,
                      deadline: float | None = None) -> list[str]:
        """The jar's statistics line for each pair, in order (one ``SCORE`` line each)."""
        _check_pairs(hyps, refs)
        payload = "".join(score_line(h, r) for h, r in zip(hyps, refs)).encode("utf-8")
        with self.exchange(deadline) as timed_out:
            writer = threading.Thread(target=self.write, args=(payload,), daemon=True)
            writer.start()
            try:
                stats = []
                for _ in hyps:
                    stats.append(self.read_line(timed_out))
                    if advance is not None:
                        advance(1)
            finally:
                writer.join(timeout=5)
            for line in stats:
                if len(line.split()) != len(METEOR_STAT_NAMES):
                    raise NLGSubprocessError(f"METEOR returned an unexpected statistics line: {line[:200]!r}")
        return stats

    def evaluate(self, stats: Sequence[str], *, deadline: float | None = None) -> MeteorOutput:
        """Per-item and corpus METEOR of statistics lines (one ``EVAL`` line): the jar's own arithmetic."""
        with self.exchange(deadline) as timed_out:
            self.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
            item_scores = [self._read_float(timed_out) for _ in stats]
            corpus = self._read_float(timed_out)
        return MeteorOutput(corpus=corpus, item_scores=item_scores,
                            item_stats=[[float(x) for x in line.split()] for line in stats])

    def _read_float(self, timed_out: threading.Event) -> float:
        line = self.read_line(timed_out)
        try:
            return float(line)
        except ValueError:
            raise NLGSubprocessError(f"METEOR protocol out of sync: expected a score, got {line[:200]!r}") from None


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous, near-equal ``[start, stop)`` ranges covering ``range(n)`` (none empty)."""
    shards = max(1, min(shards, n))
    cuts = [round(i * n / shards) for i in range(shards + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def score_sharded(meteors: Sequence[MeteorProcess], hyps: Sequence[str], refs: Sequence[str], *,
                  advance: Advance | None = None, started: Advance | None = None) -> MeteorOutput:
    """METEOR of all pairs with the ``SCORE`` lines spread over ``meteors``, exactly as one jar.

    ``SCORE`` lines are stateless, so each jar scores a contiguous shard; the statistics lines
    are put back in the original order and sent as **one** ``EVAL`` line to the first jar, which
    is byte for byte what a single pycocoevalcap process sends: the per-item and corpus scores
    are the jar's own, not a re-aggregation. One deadline (the longest ``timeout_s``) covers the
    whole pass; a failing shard kills the others so the error surfaces at once. ``started`` is
    called once, at the first answer (the end of a JVM start-up, which can take seconds).
    """
    _check_pairs(hyps, refs)
    deadline = time.monotonic() + max(m.timeout_s for m in meteors)
    step = _first_answer_announced(advance, started)
    bounds = shard_bounds(len(hyps), len(meteors))
    if len(bounds) == 1:
        stats = meteors[0].segment_stats(hyps, refs, step, deadline=deadline)
    else:
        with ThreadPoolExecutor(max_workers=len(bounds), thread_name_prefix="meteor-shard") as shards:
            futures = [shards.submit(m.segment_stats, hyps[a:b], refs[a:b], step, deadline=deadline)
                       for m, (a, b) in zip(meteors, bounds)]
            try:
                stats = [line for future in futures for line in future.result()]
            except BaseException:
                for meteor in meteors:
                    meteor.close()
                raise
    return meteors[0].evaluate(stats, deadline=deadline)


def _first_answer_announced(advance: Advance | None, started: Advance | None) -> Advance | None:
    if started is None:
        return advance
    lock, announced = threading.Lock(), [False]

    def step(n: int) -> None:
        if not announced[0]:
            with lock:
                if not announced[0]:
                    announced[0] = True
                    started(1)
        if advance is not None:
            advance(n)

    return step


# ---------------------------------------------------------------------------------------
# Scores from the jar's statistics
# ---------------------------------------------------------------------------------------


def meteor_from_stats(stats: np.ndarray) -> np.ndarray:
    """METEOR 1.5 ``MeteorScorer.computeMetrics`` for each row of 23 statistics.

    Same arithmetic order as the jar; IEEE semantics (0/0 -> NaN -> score 0) as in Java.
    """
    s = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    tl, rl, tf, rf = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    stage = s[:, 4:20].reshape(-1, 4, 4)  # [row, stage, (tc, rc, tf, rf)]
    chunks, twm_words, rwm_words = s[:, 20], s[:, 21], s[:, 22]
    d, a = METEOR_DELTA, METEOR_ALPHA
    with np.errstate(all="ignore"):
        tw_len = (d * (tl - tf)) + ((1.0 - d) * tf)
        rw_len = (d * (rl - rf)) + ((1.0 - d) * rf)
        tw_match = np.zeros(len(s))
        rw_match = np.zeros(len(s))
        for i, w in enumerate(METEOR_WEIGHTS):  # content matches first, as the jar sums
            tw_match = tw_match + stage[:, i, 0] * w * d
            rw_match = rw_match + stage[:, i, 1] * w * d
        for i, w in enumerate(METEOR_WEIGHTS):
            tw_match = tw_match + stage[:, i, 2] * w * (1.0 - d)
            rw_match = rw_match + stage[:, i, 3] * w * (1.0 - d)
        precision = tw_match / tw_len
        recall = rw_match / rw_len
        f_mean = 1.0 / (((1.0 - a) / precision) + (a / recall))
        test_total, ref_total = _meteor_totals(stage)
        perfect = (test_total == tl) & (ref_total == rl) & (chunks == 1.0)
        frag = np.where(perfect, 0.0, chunks / ((twm_words + rwm_words) / 2))
        # math.pow, not np.power: numpy's SIMD power differs from Java's Math.pow in the last bit
        # for some inputs; libm's pow matched the jar on every value measured (CARD.md, METEOR)
        penalty = METEOR_GAMMA * np.array([math.pow(f, METEOR_BETA) for f in frag.tolist()])
        score = f_mean * (1.0 - penalty)
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


def _meteor_totals(stage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted match totals as the jar re-derives them when parsing a statistics line."""
    test_total = np.zeros(stage.shape[0])
    ref_total = np.zeros(stage.shape[0])
    for i in range(stage.shape[1]):
        test_total = test_total + stage[:, i, 0] + stage[:, i, 2]
        ref_total = ref_total + stage[:, i, 1] + stage[:, i, 3]
    return test_total, ref_total


def meteor_corpus(stats: np.ndarray) -> float:
    """The jar's ``EVAL`` aggregate: statistics summed (``MeteorStats.addStats``), then scored.

    ``addStats`` skips the chunk count of a study that matches its reference perfectly in
    one chunk; every other statistic is a plain sum.
    """
    s = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    stage = s[:, 4:20].reshape(-1, 4, 4)
    test_total, ref_total = _meteor_totals(stage)
    perfect = (test_total == s[:, 0]) & (ref_total == s[:, 1]) & (s[:, 20] == 1.0)
    summed = s.sum(axis=0)
    summed[20] = s[~perfect, 20].sum()
    return float(meteor_from_stats(summed)[0])
