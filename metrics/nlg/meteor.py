"""METEOR 1.5: the jar as a safe subprocess, and its scores recomputed from its statistics.

Why both halves live here: the jar reports, per study, the 23 statistics of its
``MeteorStats`` line; :func:`meteor_from_stats` and :func:`meteor_corpus` replay the jar's own
arithmetic on them, so a bootstrap resample of studies gets the corpus METEOR the jar would
print, without starting a JVM again. The process half keeps pycocoevalcap's protocol but not
its hazards (see :class:`MeteorProcess`).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rrg_bench.metrics.nlg.java import METEOR_JAR, NLGSubprocessError, one_line, require_java, stderr_tail

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


@dataclass
class MeteorOutput:
    corpus: float
    item_scores: list[float]
    item_stats: list[list[float]]


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _meteor_field(text: str) -> str:
    """One ``|||``-separated field: no line break (it would end the protocol line), no ``|||``."""
    text = one_line(text)
    while "|||" in text:
        text = text.replace("|||", "")
    return text


class MeteorProcess:
    """One METEOR 1.5 jar in ``-stdio`` mode, spoken to exactly as pycocoevalcap's ``Meteor``.

    Differences from pycocoevalcap's wrapper, all about process safety: line breaks and
    ``|||`` are removed from hypotheses *and* references; stderr goes to a temp file (a pipe
    nobody reads fills up and blocks the JVM); a watchdog kills the JVM after
    ``timeout_s``; lines are written from a thread so the JVM never waits for us; the
    process is killed on ``close()``, on leaving a ``with`` block, and at interpreter exit.
    """

    def __init__(self, *, timeout_s: float = 600.0, java: str | None = None) -> None:
        self.timeout_s = timeout_s
        java = java or require_java()
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [java, "-jar", "-Xmx2G", str(METEOR_JAR), "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=METEOR_JAR.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._finalizer = weakref.finalize(self, _kill, self._proc)
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def __enter__(self) -> MeteorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self._proc.stdin and not self._proc.stdin.closed:
                self._proc.stdin.close()  # an idle jar exits at end of input within ~0.1 s
            self._proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self._finalizer()  # kills if still running
            if self._proc.stdout:
                self._proc.stdout.close()
            self._stderr.close()

    def score(self, hyps: Sequence[str], refs: Sequence[str],
              advance: Callable[[int], Any] | None = None) -> MeteorOutput:
        """Per-item statistics (``SCORE``), then per-item and corpus scores (``EVAL``)."""
        if len(hyps) != len(refs) or not hyps:
            raise ValueError("METEOR needs equally many (>0) hypotheses and references")
        with self._lock:
            timed_out = threading.Event()

            def on_timeout() -> None:
                timed_out.set()
                self._proc.kill()

            watchdog = threading.Timer(self.timeout_s, on_timeout)
            watchdog.daemon = True
            watchdog.start()
            try:
                return self._exchange(hyps, refs, advance, timed_out)
            finally:
                watchdog.cancel()

    def _exchange(self, hyps: Sequence[str], refs: Sequence[str],
                  advance: Callable[[int], Any] | None, timed_out: threading.Event) -> MeteorOutput:
        lines = []
        for hyp, ref in zip(hyps, refs):
            # line breaks out first, then pycocoevalcap's own hypothesis handling
            hyp = _meteor_field(one_line(hyp).replace("|||", "").replace("  ", " "))
            lines.append(" ||| ".join(("SCORE", _meteor_field(ref), hyp)) + "\n")
        writer = threading.Thread(target=self._write_all, args=(lines,), daemon=True)
        writer.start()
        try:
            stats_lines = []
            for _ in lines:
                stats_lines.append(self._read_line(timed_out))
                if advance is not None:
                    advance(1)
            writer.join()
            self._write_all(["EVAL ||| " + " ||| ".join(stats_lines) + "\n"])
            item_scores = [self._read_float(timed_out) for _ in lines]
            corpus = self._read_float(timed_out)
        finally:
            writer.join(timeout=5)
        item_stats = []
        for line in stats_lines:
            fields = line.split()
            if len(fields) != len(METEOR_STAT_NAMES):
                raise NLGSubprocessError(f"METEOR returned an unexpected statistics line: {line[:200]!r}")
            item_stats.append([float(x) for x in fields])
        return MeteorOutput(corpus=corpus, item_scores=item_scores, item_stats=item_stats)

    def _write_all(self, lines: list[str]) -> None:
        try:
            assert self._proc.stdin is not None
            for line in lines:
                self._proc.stdin.write(line.encode("utf-8"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the reader reports the dead process with its stderr

    def _read_line(self, timed_out: threading.Event) -> str:
        assert self._proc.stdout is not None
        raw = self._proc.stdout.readline()
        if raw:
            return raw.decode("utf-8", "replace").strip()
        if timed_out.is_set():
            self._proc.wait()
            raise NLGSubprocessError(
                f"METEOR (Java) did not answer within {self.timeout_s:g} s and was killed; "
                "raise BENCH_NLG_TIMEOUT for very large inputs."
            )
        self._proc.wait()
        raise NLGSubprocessError(
            f"the METEOR jar exited unexpectedly (code {self._proc.returncode}); it needs Java "
            f"and a 2 GB heap (-Xmx2G). stderr: {stderr_tail(self._stderr) or '(empty)'}"
        )

    def _read_float(self, timed_out: threading.Event) -> float:
        line = self._read_line(timed_out)
        try:
            return float(line)
        except ValueError:
            raise NLGSubprocessError(f"METEOR protocol out of sync: expected a score, got {line[:200]!r}") from None


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
        penalty = METEOR_GAMMA * np.power(frag, METEOR_BETA)
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
