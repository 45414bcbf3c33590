"""Text conventions: what predictions and references become before any NLG statistic is computed.

Why pluggable: a BLEU number means nothing without its tokenisation, so the convention is part
of every column id (``bleu4[tok=ptb]``, ``bleu4[conv=r2gen]``) and each one is a class here —
a further convention is one more :class:`Normaliser` in :data:`NORMALISERS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.scorer import ScoringContext
from rrg_bench.errors import BenchError, UsageError
from rrg_bench.metrics.nlg import ptb
from rrg_bench.metrics.nlg.java import NLGSubprocessError, NLGTimeout, require_java
from rrg_bench.metrics.nlg.pool import POOL
from rrg_bench.metrics.nlg.r2gen import (
    R2GenSettings,
    Vocabulary,
    clean_report_iu_xray,
    count_style_mismatches,
    dot_spacing,
    reference_text,
    resolve_settings,
)


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

    def normalise_blocks(self, blocks: Sequence[Sequence[str]], *, timeout_s: float) -> list[list[str]]:
        """Several lists of texts, each normalised as one call would (a tokeniser's context never
        crosses from one list into the next)."""
        return [self.normalise(block, timeout_s=timeout_s) for block in blocks]

    def prepare(self, hyps: Sequence[str], refs: Sequence[str], ctx: ScoringContext, *,
                timeout_s: float) -> tuple[list[str], list[str], list[str]]:
        hyp_t, ref_t = self.normalise_blocks([hyps, refs], timeout_s=timeout_s)
        return hyp_t, ref_t, []


class PTBNormaliser(TextNormaliser):
    """pycocoevalcap's PTBTokenizer: CoreNLP 3.4.1 ``-preserveLines -lowerCase``, punctuation dropped.

    We run the same jar with the same options and drop the same punctuation tokens
    (``ptbtokenizer.PUNCTUATIONS``) as ``PTBTokenizer.tokenize`` — a parity test shows
    identical output — but (a) replace every line-break character, not only ``\\n``,
    (b) check that CoreNLP returned exactly one line per text instead of zipping silently,
    (c) write no temporary file into site-packages, (d) enforce a timeout, and (e) keep one
    tokeniser JVM for the process (:mod:`.ptb`). Predictions and references are tokenised as
    two separate inputs, as pycocoevalcap's two ``tokenize`` calls do.
    """

    id = "ptb:corenlp-3.4.1"
    description = "PTB-tokenised (pycocoevalcap PTBTokenizer, CoreNLP 3.4.1, lower-cased, punctuation dropped)"

    def normalise(self, texts: Sequence[str], *, timeout_s: float) -> list[str]:
        return self.normalise_blocks([texts], timeout_s=timeout_s)[0]

    def normalise_blocks(self, blocks: Sequence[Sequence[str]], *, timeout_s: float) -> list[list[str]]:
        lists = [list(block) for block in blocks]
        if not any(lists):
            return [[] for _ in lists]
        java = require_java()
        classes = ptb.server_classes(java, timeout_s=timeout_s)
        if classes is not None:
            done = _with_server(java, classes, lists, timeout_s)
            if done is not None:
                return done
        return [ptb.run_command(java, block, timeout_s=timeout_s) if block else [] for block in lists]


def _with_server(java: str, classes: Path, blocks: list[list[str]], timeout_s: float) -> list[list[str]] | None:
    """The blocks tokenised by the process's tokeniser server; None if it cannot start (then the
    command is used, now and for the rest of the process). A server that answered before and then
    fails, or one that times out, is an error: the command would fail or wait the same way."""
    started: list[ptb.PTBServer] = []

    def start() -> ptb.PTBServer:
        started.append(ptb.PTBServer(java=java, classes=classes, timeout_s=timeout_s))
        return started[-1]

    try:
        with POOL.lease(("ptb", java, str(classes)), 1, start, timeout_s=timeout_s) as (server,):
            return [server.tokenise(block) if block else [] for block in blocks]
    except NLGTimeout:
        raise
    except NLGSubprocessError:
        if not started or started[0].answered:
            raise
        ptb.forget_server(java)
        return None


class R2GenCleanNormaliser(TextNormaliser):
    """R2Gen's ``clean_report_iu_xray`` followed by the whitespace split/join of its tokeniser.

    Re-implemented from the published rules (see CARD.md, BLEU "Conventions"); the
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
    """``conv=r2gen``: what R2Gen-family code hands pycocoevalcap (rules in ``r2gen.py``).

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
        self.overrides: dict[str, Any] = {"cleaner": cleaner, "threshold": threshold, "max_seq_length": max_seq_length}
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

