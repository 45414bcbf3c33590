"""BLEU-1..4, METEOR, ROUGE-L and CIDEr-D with pycocoevalcap 1.2's scorers used as a library.

Why a wrapper and not ``COCOEvalCap``: the field's numbers come from these scorers, so the
corpus values must be exactly theirs, but the bundled glue is unsafe for a benchmark — the
PTB tokeniser silently misaligns ids when a text holds a line break other than ``\\n`` and
writes into site-packages; the METEOR wrapper desyncs on a newline, never drains stderr,
has no timeout and can hang at interpreter exit; SPICE downloads at run time. So the
numeric work is pycocoevalcap's (``BleuScorer``, ``Rouge``, ``Cider``, the METEOR 1.5 jar,
CoreNLP's PTBTokenizer with pycocoevalcap's punctuation list) and only the process
handling is ours. Parity tests pin every value to a direct pycocoevalcap call.

Per-study sufficient statistics (BLEU clipped counts and lengths, METEOR's 23 jar
statistics, per-study ROUGE-L and CIDEr-D) let :meth:`NLGScorer.aggregate` recompute the
corpus values for any resample of studies, which is what bootstrap CIs and paired tests
need. The text convention is a pluggable :class:`Normaliser` (``tok=ptb`` | ``tok=r2gen``),
so further conventions are one more class in :data:`NORMALISERS`. ``conv=r2gen`` is the one
convention that needs more than the texts (the dataset's train reports, for R2Gen's
vocabulary): :class:`R2GenConventionNormaliser`, rules in :mod:`metrics.r2gen_convention`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import weakref
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Literal, Sequence

import numpy as np
import pandas as pd
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer import ptbtokenizer as _ptb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rrg_bench.hashing import sha256_file_memo
from rrg_bench.errors import BenchError, UsageError
from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.metrics.r2gen_convention import (
    R2GenSettings,
    Vocabulary,
    clean_report_iu_xray,
    count_style_mismatches,
    dot_spacing,
    reference_text,
    resolve_settings,
)

# ---------------------------------------------------------------------------------------
# Errors and the Java runtime
# ---------------------------------------------------------------------------------------

JAVA_INSTALL_HINT = (
    "install Java 17 (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) "
    "or put a `java` executable on PATH / set JAVA_HOME"
)


class JavaUnavailable(BenchError):
    """No Java runtime: METEOR 1.5 and the PTB tokeniser are Java programs."""


class NLGSubprocessError(BenchError):
    """The METEOR or PTB-tokeniser subprocess failed, desynchronised or timed out."""


def java_executable() -> str | None:
    """``$JAVA_HOME/bin/java`` if present, else ``java`` on PATH, else None."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def require_java() -> str:
    java = java_executable()
    if java is None:
        raise JavaUnavailable(
            "metric 'nlg' needs Java 17 for METEOR 1.5 and the PTB tokeniser, but no `java` "
            f"was found; {JAVA_INSTALL_HINT}."
        )
    return java


@functools.lru_cache(maxsize=8)
def java_version(java: str) -> str | None:
    """The runtime's version string (e.g. ``17.0.15``), recorded in every results record."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------
# pycocoevalcap's bundled jars
# ---------------------------------------------------------------------------------------

PYCOCOEVALCAP_DIR = Path(_ptb.__file__).resolve().parent.parent
METEOR_JAR = PYCOCOEVALCAP_DIR / "meteor" / "meteor-1.5.jar"
PTB_JAR = PYCOCOEVALCAP_DIR / "tokenizer" / _ptb.STANFORD_CORENLP_3_4_1_JAR


def pycocoevalcap_version() -> str:
    return importlib.metadata.version("pycocoevalcap")


def _stderr_tail(fh: Any, limit: int = 600) -> str:
    """Last lines a subprocess wrote to its (file-backed) stderr, for error messages."""
    try:
        fh.flush()
        fh.seek(0)
        text = fh.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""
    return text[-limit:]


# ---------------------------------------------------------------------------------------
# Text conventions
# ---------------------------------------------------------------------------------------

#: every character Python's str.splitlines() breaks on; CoreNLP and the METEOR jar split
#: lines on several of them, which would silently shift texts onto other studies' lines
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


class Normaliser(ABC):
    """Turns predictions and references into the token strings every NLG scorer splits on spaces."""

    #: recorded in fingerprints and cache keys; bump the suffix when the output changes
    id: ClassVar[str]
    #: one line for table captions
    description: ClassVar[str]

    @abstractmethod
    def prepare(self, hyps: Sequence[str], refs: Sequence[str], ctx: ScoringContext, *,
                timeout_s: float) -> tuple[list[str], list[str], list[str]]:
        """``(hypotheses, references, notes)`` as the scorers will see them."""

    def facts(self) -> dict[str, Any]:
        """Implementation facts for the record (e.g. what a vocabulary was built from)."""
        return {}


class TextNormaliser(Normaliser):
    """A convention that treats every text alike and needs nothing but the texts."""

    @abstractmethod
    def normalise(self, texts: Sequence[str], *, timeout_s: float) -> list[str]:
        """Normalise all texts in one go (one JVM start for the PTB tokeniser)."""

    def prepare(self, hyps: Sequence[str], refs: Sequence[str], ctx: ScoringContext, *,
                timeout_s: float) -> tuple[list[str], list[str], list[str]]:
        texts = self.normalise([*hyps, *refs], timeout_s=timeout_s)
        return texts[:len(hyps)], texts[len(hyps):], []


class PTBNormaliser(TextNormaliser):
    """pycocoevalcap's PTBTokenizer: CoreNLP 3.4.1 ``-preserveLines -lowerCase``, punctuation dropped.

    We run the same jar with the same options and drop the same punctuation tokens
    (``ptbtokenizer.PUNCTUATIONS``) as ``PTBTokenizer.tokenize`` — a parity test shows
    identical output — but (a) replace every line-break character, not only ``\\n``,
    (b) check that CoreNLP returned exactly one line per text instead of zipping silently,
    (c) write the temporary file outside site-packages, (d) enforce a timeout.
    """

    id = "ptb:corenlp-3.4.1"
    description = "PTB-tokenised (pycocoevalcap PTBTokenizer, CoreNLP 3.4.1, lower-cased, punctuation dropped)"

    def normalise(self, texts: Sequence[str], *, timeout_s: float) -> list[str]:
        if not texts:
            return []
        java = require_java()
        body = "\n".join(one_line(t) for t in texts)
        with tempfile.TemporaryDirectory(prefix="rrg-bench-ptb-") as tmp:
            src = Path(tmp) / "captions.txt"
            src.write_bytes(body.encode("utf-8"))
            cmd = [java, "-cp", str(PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer",
                   "-preserveLines", "-lowerCase", str(src)]
            try:
                done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise NLGSubprocessError(
                    f"the PTB tokeniser (CoreNLP) did not finish within {timeout_s:g} s for "
                    f"{len(texts)} texts and was killed; raise BENCH_NLG_TIMEOUT if the input is huge."
                ) from None
        if done.returncode != 0:
            raise NLGSubprocessError(
                f"the PTB tokeniser (CoreNLP) exited with code {done.returncode}: "
                f"{done.stderr.decode('utf-8', 'replace').strip()[-600:]}"
            )
        # CoreNLP keeps the line structure byte for byte: n texts -> exactly n-1 newlines
        lines = done.stdout.decode("utf-8").split("\n")
        if len(lines) != len(texts):
            raise NLGSubprocessError(
                f"the PTB tokeniser returned {len(lines)} lines for {len(texts)} texts; refusing "
                "to guess which line belongs to which study."
            )
        drop = set(_ptb.PUNCTUATIONS)
        return [" ".join(w for w in line.rstrip().split(" ") if w not in drop) for line in lines]


class R2GenCleanNormaliser(TextNormaliser):
    """R2Gen's ``clean_report_iu_xray`` followed by the whitespace split/join of its tokeniser.

    Re-implemented from the published rules (see metrics/cards/nlg.md, BLEU "Conventions"); the
    deliberate difference is that a report with no word left becomes "" rather than ".",
    so an empty prediction earns nothing for the sentence separator token.
    """

    id = "r2gen_clean_iu:1"
    description = "R2Gen clean_report_iu_xray text (lower-cased, punctuation stripped, ' . ' sentence tokens)"

    def clean(self, report: str) -> str:
        tokens = clean_report_iu_xray(report).split()
        return " ".join(tokens) if any(t != "." for t in tokens) else ""

    def normalise(self, texts: Sequence[str], *, timeout_s: float) -> list[str]:
        return [self.clean(t) for t in texts]


class R2GenConventionNormaliser(Normaliser):
    """``conv=r2gen``: what R2Gen-family code hands pycocoevalcap (metrics/r2gen_convention.py).

    References: the dataset's R2Gen cleaner, the vocabulary of the *train* reports (words seen
    fewer than ``threshold`` times become ``<unk>``), cut to ``max_seq_length - 1`` tokens.
    Predictions: as emitted (R2Gen's are the model's own decoded ids; CvT2DistilGPT2 scores raw
    GPT-2 text). Both: "." -> " ." and runs of spaces collapsed. No PTB tokeniser. The
    settings default to R2Gen's for the evaluated dataset (``ctx.dataset``); the train
    references come from ``ctx.train_references``.
    """

    id = "r2gen_conv:1"
    description = (
        "R2Gen convention: references R2Gen-cleaned, encoded with the train-split vocabulary (rarer words "
        "-> <unk>) and cut to max_seq_length-1 tokens; predictions as emitted; '.' -> ' .'; no PTB "
        "tokeniser; defaults IU X-Ray threshold 3 / max_seq_length 60, MIMIC-CXR 10 / 100 unless the id says otherwise"
    )

    def __init__(self, *, cleaner: str | None = None, threshold: int | None = None,
                 max_seq_length: int | None = None) -> None:
        self.overrides = {"cleaner": cleaner, "threshold": threshold, "max_seq_length": max_seq_length}
        self._vocab: Vocabulary | None = None
        self._vocab_source: Callable[[], Sequence[str]] | None = None
        self._facts: dict[str, Any] = {}

    def facts(self) -> dict[str, Any]:
        return dict(self._facts)

    def prepare(self, hyps: Sequence[str], refs: Sequence[str], ctx: ScoringContext, *,
                timeout_s: float) -> tuple[list[str], list[str], list[str]]:
        settings = resolve_settings(ctx.dataset, **self.overrides)
        vocab = self._vocabulary(ctx, settings)
        ref_t = [dot_spacing(reference_text(r, vocab, settings)) for r in refs]
        hyp_t = [dot_spacing(h) for h in hyps]
        self._facts = {"r2gen": {
            "dataset": ctx.dataset, "cleaner": settings.cleaner, "threshold": settings.threshold,
            "max_seq_length": settings.max_seq_length, "vocab_from": "train", "train_reports": vocab.n_reports,
            "vocab_size": vocab.size, "vocab_sha256": vocab.sha256,
        }}
        notes = []
        foreign = count_style_mismatches(hyps)
        if foreign:
            notes.append(
                f"conv=r2gen: {foreign} of {len(hyps)} predictions contain upper-case letters or punctuation "
                "that R2Gen-cleaned references never contain; the convention scores predictions as emitted, "
                "so those characters only cost matches (emit lower-case, punctuation-free text as R2Gen-family "
                "models do, or compare under tok=ptb)."
            )
        return hyp_t, ref_t, notes

    def _vocabulary(self, ctx: ScoringContext, settings: R2GenSettings) -> Vocabulary:
        """Built once per (train-reference source, cleaner, threshold)."""
        source = ctx.train_references
        if source is None:
            raise UsageError(
                "metric 'nlg[conv=r2gen]' rebuilds R2Gen's vocabulary from the evaluated dataset's train "
                "reports, but none are available here; score through `bench run`/`bench score` on a dataset "
                "with a train split"
            )
        vocab = self._vocab
        if (vocab is None or self._vocab_source is not source
                or (vocab.cleaner, vocab.threshold) != (settings.cleaner, settings.threshold)):
            try:
                reports = list(source())
            except BenchError as exc:
                raise UsageError(
                    f"metric 'nlg[conv=r2gen]' needs the train split of {ctx.dataset or 'the dataset'} "
                    f"for R2Gen's vocabulary: {exc}"
                ) from None
            if not reports:
                raise UsageError(f"metric 'nlg[conv=r2gen]': the train split of {ctx.dataset} has no reports")
            vocab = Vocabulary.from_reports(reports, cleaner=settings.cleaner, threshold=settings.threshold)
            self._vocab, self._vocab_source = vocab, source
        return vocab


NORMALISERS: dict[str, Callable[[], Normaliser]] = {
    "ptb": PTBNormaliser,
    "r2gen": R2GenCleanNormaliser,
}

# ---------------------------------------------------------------------------------------
# METEOR 1.5 subprocess
# ---------------------------------------------------------------------------------------

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

    def __enter__(self) -> "MeteorProcess":
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
                f"METEOR did not finish within {self.timeout_s:g} s and was killed; "
                "raise BENCH_NLG_TIMEOUT for very large inputs."
            )
        self._proc.wait()
        raise NLGSubprocessError(
            f"the METEOR jar exited unexpectedly (code {self._proc.returncode}); it needs Java "
            f"and a 2 GB heap (-Xmx2G). stderr: {_stderr_tail(self._stderr) or '(empty)'}"
        )

    def _read_float(self, timed_out: threading.Event) -> float:
        line = self._read_line(timed_out)
        try:
            return float(line)
        except ValueError:
            raise NLGSubprocessError(f"METEOR protocol out of sync: expected a score, got {line[:200]!r}") from None


# ---------------------------------------------------------------------------------------
# Corpus values from sufficient statistics
# ---------------------------------------------------------------------------------------

BLEU_N = 4
BLEU_COLS = ("bleu_testlen", "bleu_reflen",
             *(f"bleu_guess_{k}" for k in range(1, BLEU_N + 1)),
             *(f"bleu_correct_{k}" for k in range(1, BLEU_N + 1)))
METEOR_COLS = tuple(f"meteor_{name}" for name in METEOR_STAT_NAMES)


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


# ---------------------------------------------------------------------------------------
# The scorer
# ---------------------------------------------------------------------------------------

#: (column key, display name, convention for table captions)
_FAMILIES: tuple[tuple[str, str, str], ...] = (
    *((f"bleu{n}", f"BLEU-{n}", f"corpus BLEU-{n}, pycocoevalcap 1.2 Bleu(4) (clipped n-gram counts "
       "summed over studies, one brevity penalty)") for n in range(1, BLEU_N + 1)),
    ("meteor", "METEOR", "METEOR 1.5 jar via pycocoevalcap 1.2 (-l en -norm), corpus score from summed statistics"),
    ("rouge_l", "ROUGE-L", "ROUGE-L F (beta=1.2), pycocoevalcap 1.2, mean over studies"),
    ("cider_d", "CIDEr-D", "CIDEr-D (n=1..4, sigma=6, x10), pycocoevalcap 1.2, mean over studies, "
     "idf from this set's references"),
)


class NLGParams(BaseModel):
    """``tok=`` picks a text normaliser; ``conv=r2gen`` instead reproduces R2Gen's whole pipeline.

    Unset (None) parameters are left out of the spec, so the default stays ``nlg[tok=ptb]``
    and the convention is ``nlg[conv=r2gen]`` (plus any explicit override).
    """

    model_config = ConfigDict(extra="forbid")
    tok: Literal["ptb", "r2gen"] | None = "ptb"
    conv: Literal["r2gen"] | None = None
    #: conv=r2gen only; None = R2Gen's value for the evaluated dataset
    cleaner: Literal["iu_xray", "mimic_cxr"] | None = None
    threshold: int | None = Field(default=None, ge=1)
    max_seq_length: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _one_convention(self) -> "NLGParams":
        conv_only = [k for k in ("cleaner", "threshold", "max_seq_length") if getattr(self, k) is not None]
        if self.conv is None:
            if conv_only:
                raise ValueError(f"{', '.join(conv_only)} only apply with conv=r2gen")
            if self.tok is None:
                raise ValueError("tok must be ptb or r2gen")
            return self
        if "tok" in self.model_fields_set and self.tok is not None:
            raise ValueError(f"conv={self.conv} fixes its own text handling; drop tok={self.tok}")
        self.tok = None
        return self


class NLGScorer(Scorer):
    """pycocoevalcap's BLEU-1..4, METEOR, ROUGE-L and CIDEr-D under one named text convention."""

    name = "nlg"
    version = "1"
    Params = NLGParams

    #: seconds before the PTB tokeniser or METEOR is killed; env BENCH_NLG_TIMEOUT overrides
    timeout_s: float = 600.0

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        env = os.environ.get("BENCH_NLG_TIMEOUT")
        if env:
            try:
                self.timeout_s = float(env)
            except ValueError:
                raise UsageError(f"BENCH_NLG_TIMEOUT={env!r} is not a number of seconds") from None
        self.normaliser: Normaliser = _make_normaliser(self.params)
        self._meteor: MeteorProcess | None = None

    @property
    def spec(self) -> str:
        """Like ``Scorer.spec`` but without unset parameters: ``nlg[tok=ptb]``, ``nlg[conv=r2gen]``."""
        items = sorted(self._set_params().items())
        return self.name + "[" + ",".join(f"{k}={v}" for k, v in items) + "]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self._set_params(), "impl": self.impl()}

    def _set_params(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json", exclude_none=True)

    @contextlib.contextmanager
    def session(self) -> Iterator["NLGScorer"]:
        """Share one METEOR JVM between several ``score`` calls (its start costs ~6 s).

        Outside a session each ``score`` call starts and closes its own JVM.
        """
        if self._meteor is not None:
            yield self
            return
        with MeteorProcess(timeout_s=self.timeout_s) as meteor:
            self._meteor = meteor
            try:
                yield self
            finally:
                self._meteor = None

    # -- contract --------------------------------------------------------------------

    def columns(self) -> list[Column]:
        suffix = self.spec[len(self.name):]  # e.g. "[tok=ptb]"
        return [Column(id=f"{key}{suffix}", display=display,
                       convention=f"{conv}; {self.normaliser.description}")
                for key, display, conv in _FAMILIES]

    def unavailable_reason(self) -> str | None:
        if java_executable() is None:
            return f"needs Java 17 for METEOR 1.5 and the PTB tokeniser: {JAVA_INSTALL_HINT}"
        for jar in (METEOR_JAR, PTB_JAR):
            if not jar.is_file():
                return f"pycocoevalcap is missing {jar}; reinstall it: `pip install --force-reinstall pycocoevalcap==1.2`"
        return None

    def impl(self) -> dict[str, Any]:
        java = java_executable()
        facts: dict[str, Any] = {
            "pycocoevalcap": pycocoevalcap_version(),
            "normaliser": self.normaliser.id,
            "meteor_jar": METEOR_JAR.name,
            "meteor_jar_sha256": sha256_file_memo(METEOR_JAR) if METEOR_JAR.is_file() else None,
            "java": java_version(java) if java else None,
        }
        if isinstance(self.normaliser, PTBNormaliser):
            facts["ptb_jar_sha256"] = sha256_file_memo(PTB_JAR) if PTB_JAR.is_file() else None
        facts.update(self.normaliser.facts())
        return facts

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        n = len(study_ids)
        if not (n == len(hyps) == len(refs)):
            raise ValueError(f"nlg: {n} study ids, {len(hyps)} hypotheses, {len(refs)} references")
        if n == 0:
            raise UsageError("metric 'nlg': there are no studies to score")
        if len(set(study_ids)) != n:
            raise ValueError("nlg: study ids must be unique")
        java = require_java()

        # The METEOR JVM spends seconds loading its paraphrase table and then works in its own
        # process: start it first and let it run while Python computes BLEU/ROUGE/CIDEr.
        # The stack closes our JVM before joining the thread pool, so an error here never
        # leaves the METEOR thread waiting on a live process.
        with contextlib.ExitStack() as stack:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="meteor"))
            meteor = (self._meteor if self._meteor is not None
                      else stack.enter_context(MeteorProcess(timeout_s=self.timeout_s, java=java)))
            hyp_t, ref_t, notes = self.normaliser.prepare(hyps, refs, ctx, timeout_s=self.timeout_s)
            advance = ctx.progress("METEOR", n) if ctx.progress else None
            met_future = pool.submit(meteor.score, hyp_t, ref_t, advance)
            res = {i: [h] for i, h in enumerate(hyp_t)}
            gts = {i: [r] for i, r in enumerate(ref_t)}
            bleu_values, bleu_stats = _bleu(gts, res)
            rouge_mean, rouge_items = Rouge().compute_score(gts, res)
            cider_mean, cider_items, cider_notes = _cider(gts, res)
            notes = [*notes, *cider_notes]
            met = met_future.result()

        # all float64 (counts are exact integers far below 2**53): one block, fast to resample
        columns: dict[str, Any] = dict(zip(BLEU_COLS, np.asarray(bleu_stats, dtype=np.float64).T))
        columns["meteor"] = np.asarray(met.item_scores, dtype=np.float64)
        columns.update(zip(METEOR_COLS, np.asarray(met.item_stats, dtype=np.float64).T))
        columns["rouge_l"] = np.asarray(rouge_items, dtype=np.float64)
        columns["cider_d"] = np.asarray(cider_items, dtype=np.float64)
        stats = pd.DataFrame(columns, index=pd.Index(list(study_ids), name="study_id"))

        ids = [c.id for c in self.columns()]
        raw = [*bleu_values, met.corpus, rouge_mean, cider_mean]
        return ScoreResult(values={k: float(v) for k, v in zip(ids, raw)}, stats=stats,
                           ci_method="bootstrap", notes=notes)

    def aggregate(self, stats: "pd.DataFrame") -> dict[str, float]:
        if len(stats) == 0:
            raise ValueError("nlg: cannot aggregate zero studies")
        # one float64 block -> one cheap array; bootstrap loops call this thousands of times
        arr = stats.to_numpy(dtype=np.float64)
        pos = _positions(tuple(stats.columns))
        b = arr[:, pos["bleu"]].sum(axis=0)
        bleu = bleu_from_counts(b[0], b[1], b[2:6], b[6:10])
        meteor = meteor_corpus(arr[:, pos["meteor_stats"]])
        rouge = float(np.mean(arr[:, pos["rouge_l"]]))
        cider = float(np.mean(arr[:, pos["cider_d"]]))
        ids = [c.id for c in self.columns()]
        return dict(zip(ids, [*bleu, meteor, rouge, cider]))


def _make_normaliser(params: NLGParams) -> Normaliser:
    if params.conv == "r2gen":
        return R2GenConventionNormaliser(cleaner=params.cleaner, threshold=params.threshold,
                                         max_seq_length=params.max_seq_length)
    assert params.tok is not None
    return NORMALISERS[params.tok]()


@functools.lru_cache(maxsize=32)
def _positions(columns: tuple[str, ...]) -> dict[str, Any]:
    where = {name: i for i, name in enumerate(columns)}
    missing = [c for c in (*BLEU_COLS, *METEOR_COLS, "rouge_l", "cider_d") if c not in where]
    if missing:
        raise KeyError(f"nlg statistics lack columns {missing[:5]}")
    return {"bleu": [where[c] for c in BLEU_COLS], "meteor_stats": [where[c] for c in METEOR_COLS],
            "rouge_l": where["rouge_l"], "cider_d": where["cider_d"]}


def _bleu(gts: dict[int, list[str]], res: dict[int, list[str]]) -> tuple[list[float], list[list[int]]]:
    """``Bleu(4).compute_score`` (same ``BleuScorer`` calls) plus the per-study counts it sums."""
    scorer = BleuScorer(n=BLEU_N)
    for key in gts:
        scorer += (res[key][0], gts[key])
    values, _ = scorer.compute_score(option="closest", verbose=0)
    rows = []
    for comps in scorer.ctest:
        reflen = scorer._single_reflen(comps["reflen"], "closest", comps["testlen"])
        rows.append([comps["testlen"], reflen, *comps["guess"], *comps["correct"]])
    return list(values), rows


def _cider(gts: dict[int, list[str]], res: dict[int, list[str]]) -> tuple[float, list[float], list[str]]:
    """``Cider().compute_score``; when no reference has a word (its assertion would fail on an
    empty document-frequency table) every study scores 0, which is what each item would get."""
    if not any(r.split() for refs in gts.values() for r in refs):
        return 0.0, [0.0] * len(gts), ["CIDEr-D: every reference is empty; all studies score 0."]
    mean, items = Cider().compute_score(gts, res)
    return float(mean), [float(x) for x in items], []
