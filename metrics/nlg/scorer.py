"""The ``nlg`` scorer: pycocoevalcap's corpus values and per-study statistics under one text convention.

What runs where: the convention turns texts into tokens (:mod:`.normalisers`), METEOR runs in
its JVM (:mod:`.meteor`) while BLEU, ROUGE-L and CIDEr-D run in Python (:mod:`.maths`), and
:meth:`NLGScorer.aggregate` recomputes every corpus value from the statistics table.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rrg_bench.api.scorer import Column, RowsAggregate, Scorer, ScoreResult, ScoringContext
from rrg_bench.errors import UsageError
from rrg_bench.hashing import sha256_file_memo
from rrg_bench.metrics.nlg import meteor_server, paraphrases
from rrg_bench.metrics.nlg.java import (
    JAVA_INSTALL_HINT,
    METEOR_JAR,
    PTB_JAR,
    NLGSubprocessError,
    NLGTimeout,
    java_executable,
    java_version,
    pycocoevalcap_version,
    require_java,
)
from rrg_bench.metrics.nlg.maths import BLEU_N, coco_scores, corpus_values, rows_corpus_values, statistics_frame
from rrg_bench.metrics.nlg.meteor import MeteorOutput, MeteorProcess, score_sharded
from rrg_bench.metrics.nlg.meteor_server import MeteorServer, fit_tables
from rrg_bench.metrics.nlg.normalisers import NORMALISERS, Normaliser, PTBNormaliser, R2GenConventionNormaliser
from rrg_bench.metrics.nlg.pool import POOL
from rrg_bench.metrics.nlg.sentence import nlg_samples

if TYPE_CHECKING:
    import pandas as pd

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
    def _one_convention(self) -> NLGParams:
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
        self.params: NLGParams
        self.normaliser: Normaliser = _make_normaliser(self.params)

    @property
    def spec(self) -> str:
        """Like ``Scorer.spec`` but without unset parameters: ``nlg[tok=ptb]``, ``nlg[conv=r2gen]``."""
        items = sorted(self._set_params().items())
        return self.name + "[" + ",".join(f"{k}={v}" for k, v in items) + "]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self._set_params(), "impl": self.impl()}

    def _set_params(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json", exclude_none=True)

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
                return (f"pycocoevalcap is missing {jar}; reinstall it: "
                        "`pip install --force-reinstall pycocoevalcap==1.2`")
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
        n = self.checked_count(study_ids, hyps, refs)
        if len(set(study_ids)) != n:
            raise ValueError("nlg: study ids must be unique")
        java = require_java()

        # A METEOR JVM needs a moment to start (seconds for the plain jar) and then works in its own
        # process: lease (or start) it first and let it run while Python computes BLEU/ROUGE/CIDEr.
        # The lease is released before the thread pool is joined and closes a JVM still in an
        # exchange, so an error here never leaves the METEOR thread waiting on a live process.
        with contextlib.ExitStack() as stack:
            executor = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="meteor"))
            meteors = self._meteors(stack, java, ctx.workers, n)
            starting = ctx.progress("starting METEOR (Java)…", 1) if ctx.progress and not all(
                m.answered for m in meteors) else None
            hyp_t, ref_t, notes = self.normaliser.prepare(hyps, refs, ctx, timeout_s=self.timeout_s)
            advance = ctx.progress("METEOR", n) if ctx.progress else None
            fitted = threading.Event()
            met_future = executor.submit(self._meteor_pass, meteors, java, hyp_t, ref_t, ctx, advance, starting,
                                         fitted)
            # Fitting the paraphrase table is partly Python (n-gram hashes, the table file): BLEU/ROUGE/CIDEr
            # start once it is done, so that the two never take turns on the GIL and the JVM aligns while
            # they run. Measured (benchmarks/README.md, "Order of work"; with this step's other changes): 1,000
            # studies 2.1-2.4 -> 1.4-1.6 s, 16,000 17.5-20.2 -> 12.5-14.0 s, although Python idles while a JVM starts.
            fitted.wait()
            coco = coco_scores(hyp_t, ref_t)
            # the statistics table needs pandas: its cold import (~0.5 s) is paid while METEOR works
            import pandas  # noqa: F401
            met, met_failure = _meteor_or_failure(met_future, hyp_t, study_ids)

        values = dict(zip([c.id for c in self.columns()], [*coco.bleu, met.corpus if met else None,
                                                          coco.rouge_l, coco.cider_d]))
        unavailable = {cid: met_failure for cid, v in values.items() if v is None and met_failure}
        used = len(meteors)
        if ctx.workers is not None and used < min(ctx.workers, n):
            notes.append(f"--workers {ctx.workers}: METEOR ran in {used} JVM(s), one per usable core")
        return ScoreResult(values={k: float(v) for k, v in values.items() if v is not None},
                           stats=statistics_frame(study_ids, coco, met), unavailable=unavailable,
                           ci_method="bootstrap", notes=[*notes, *coco.notes])

    def _meteors(self, stack: contextlib.ExitStack, java: str, workers: int | None, n: int) -> list[MeteorProcess]:
        """``meteor_workers(...)`` JVMs leased from the process's pool (live ones reused, the rest started):
        our METEOR server where this runtime can compile it (:mod:`.meteor_server`), else the plain jar."""
        count = meteor_workers(workers, n)
        classes = meteor_server.server_classes(java, timeout_s=self.timeout_s)
        if classes is None:
            return self._plain_meteors(stack, java, count)
        return stack.enter_context(POOL.lease(
            meteor_pool_key(java), count,
            lambda: MeteorServer(java=java, classes=classes, timeout_s=self.timeout_s), timeout_s=self.timeout_s))

    def _plain_meteors(self, stack: contextlib.ExitStack, java: str, count: int) -> list[MeteorProcess]:
        return stack.enter_context(POOL.lease(
            meteor_pool_key(java, server=False), count, lambda: MeteorProcess(timeout_s=self.timeout_s, java=java),
            timeout_s=self.timeout_s))

    def _meteor_pass(self, meteors: list[MeteorProcess], java: str, hyps: Sequence[str], refs: Sequence[str],
                     ctx: ScoringContext, advance: Any, started: Any, fitted: threading.Event) -> MeteorOutput:
        """METEOR of all pairs: servers first fit their paraphrase tables to these texts (same values,
        a fraction of the start-up). A server that fails before its first answer is given up for the
        process and the plain jar scores instead; any later failure is an error, as with the jar.
        ``fitted`` is set when the tables are fitted, or as soon as nothing is left to fit or it fails
        (always, before this returns or raises: the caller waits for it)."""
        try:
            if any(isinstance(m, MeteorServer) for m in meteors):
                index = paraphrases.load_index(build=False)
                if index is None:
                    fitted.set()  # building the index takes a while: the Python scorers need not wait
                    building = ctx.progress("indexing METEOR's paraphrase table (once per machine)…", 1) \
                        if ctx.progress else None
                    index = paraphrases.load_index()
                    if building is not None:
                        building(1)
                fit_tables(meteors, hyps, refs, index)
            fitted.set()
            return score_sharded(meteors, hyps, refs, advance=advance, started=started)
        except NLGTimeout:
            raise
        except NLGSubprocessError:
            fitted.set()
            if not any(isinstance(m, MeteorServer) and not m.answered for m in meteors):
                raise
            meteor_server.forget_server(java)
            for meteor in meteors:
                meteor.close()
            with contextlib.ExitStack() as stack:
                plain = self._plain_meteors(stack, java, len(meteors))
                return score_sharded(plain, hyps, refs, advance=advance, started=started)
        finally:
            fitted.set()

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        return _named([c.id for c in self.columns()], corpus_values(stats))

    def rows_aggregate(self, stats: pd.DataFrame) -> RowsAggregate:
        ids, of_rows = [c.id for c in self.columns()], rows_corpus_values(stats)
        return lambda rows: _named(ids, of_rows(rows))

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        """Sentence BLEU-1..4 as pycocoevalcap's ``bleu_list``, and the per-study METEOR, ROUGE-L, CIDEr-D."""
        return nlg_samples(stats, [c.id for c in self.columns()])


def _named(ids: list[str], values: list[float | None]) -> dict[str, float]:
    """``corpus_values``' list by column id, without METEOR when the statistics carry none."""
    return {k: v for k, v in zip(ids, values) if v is not None}


def meteor_pool_key(java: str, *, server: bool = True) -> tuple[str, str]:
    """The pool's key for this runtime's METEOR JVMs: our server (one compiled class per runtime), or the plain jar."""
    return ("meteor-server" if server else "meteor", java)


def meteor_workers(requested: int | None, n: int, cores: int | None = None) -> int:
    """METEOR JVMs for ``n`` pairs: ``requested`` (``--workers``), at most one per pair and one per
    core this process may use (``cores``, default: the CPU affinity); by default 1.

    Why 1 by default: measured on a 2-core machine (benchmarks/README.md), two JVMs were slower
    than one at 590 and at 16,000 studies, with full paraphrase tables (a second start-up cost
    5-12 s of CPU and ~1.1 GB) and with fitted ones (the second JVM's alignments compete with the
    first's and with the Python scorers that run beside METEOR). Why the core
    cap: each JVM holds up to a 2 GB heap, so ``--workers 64`` on a small machine would start 64 of
    them and exhaust its memory without scoring any faster than one per core.
    """
    if requested is None:
        return 1
    if requested < 1:
        raise UsageError(f"--workers must be a positive number of processes, got {requested}")
    return max(1, min(requested, n, cores if cores is not None else usable_cores()))


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the OS says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _meteor_or_failure(future: Any, hyps: Sequence[str], study_ids: Sequence[str]) -> tuple[Any, str | None]:
    """METEOR's output, or why the jar could not score these texts (the other columns still can).

    METEOR 1.5's aligner can exhaust its 2 GB heap on a pathological hypothesis (a looping
    generator's 200,000-character report); that study's METEOR cannot be computed, and a corpus
    METEOR without it would be another number, so the column is recorded as unavailable."""
    try:
        return future.result(), None
    except NLGSubprocessError as exc:
        longest = max(range(len(hyps)), key=lambda i: len(hyps[i]))
        return None, (f"METEOR 1.5 could not score these texts ({exc}); the longest hypothesis is study "
                      f"{study_ids[longest]} with {len(hyps[longest].split()):,} tokens")


def _make_normaliser(params: NLGParams) -> Normaliser:
    if params.conv == "r2gen":
        return R2GenConventionNormaliser(cleaner=params.cleaner, threshold=params.threshold,
                                         max_seq_length=params.max_seq_length)
    assert params.tok is not None
    return NORMALISERS[params.tok]()
