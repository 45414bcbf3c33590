"""R2Gen's NLG evaluation convention, re-implemented so that published numbers can be reproduced.

Why it exists: R2Gen (Chen et al., EMNLP 2020) and the many models built on its code and data
(R2GenCMN, R2GenGPT, PromptMRG, CvT2DistilGPT2, …) never score against the report text. Their
reference is what R2Gen's training pipeline makes of it: the report is cleaned with a
dataset-specific cleaner, encoded with a word vocabulary built from the *train* reports (rare
words become ``<unk>``), cut to the model's ``max_seq_length`` and decoded again. Numbers
computed this way are not comparable with PTB-tokenised ones, so the harness reproduces the
pipeline exactly and gives the result its own column ids (``bleu4[conv=r2gen]``).

What is done, in order (CARD.md beside this file, section "R2Gen NLG convention", has the sources):

* references — :func:`reference_text`: cleaner (:func:`clean_report_iu_xray` or
  :func:`clean_report_mimic_cxr`) → whitespace tokens → words seen fewer than ``threshold``
  times in the cleaned train reports become ``<unk>`` → R2Gen's id list ``[0] + ids + [0]``
  is cut to ``max_seq_length`` and decoded from position 1 up to the first 0, i.e. the first
  ``max_seq_length - 1`` tokens are kept → tokens joined by single spaces;
* hypotheses are scored as emitted: R2Gen decodes them from the model's own ids (already in
  the vocabulary, at most ``max_seq_length`` tokens), CvT2DistilGPT2 scores raw GPT-2 text;
* both sides — :func:`dot_spacing`: ``"."`` → ``" ."`` and runs of spaces collapsed, as
  CvT2DistilGPT2 does before scoring (a no-op on R2Gen's own decoded text, whose only dots
  are separate ``.`` tokens).

Written from the behaviour of github.com/cuhksz-nlp/R2Gen ``modules/tokenizers.py`` (master)
and github.com/aehrc/cvt2distilgpt2 ``tools/dataset/iu_x_ray_chen_tokenizer.py`` and
``tools/metrics/coco.py``; no code is copied.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rrg_bench.errors import UsageError
from rrg_bench.metrics.nlg.java import one_line

UNK = "<unk>"

# ---------------------------------------------------------------------------------------
# R2Gen's report cleaners
# ---------------------------------------------------------------------------------------

#: R2Gen's per-sentence character class. ``:-\[`` is a *range* (``: ; < = > ? @ A-Z [``),
#: so ``<``, ``=``, ``>``, ``@`` go while a hyphen stays ("x-ray") — kept as published.
_SENTENCE_STRIP = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")
#: numbered-list markers, replaced in this order after the ``..`` fix-ups
_LIST_MARKERS: tuple[tuple[str, str], ...] = (
    ("1. ", ""), (". 2. ", ". "), (". 3. ", ". "), (". 4. ", ". "), (". 5. ", ". "),
    (" 2. ", ". "), (" 3. ", ". "), (" 4. ", ". "), (" 5. ", ". "),
)


def _replace_repeatedly(text: str, old: str, new: str, times: int) -> str:
    for _ in range(times):
        text = text.replace(old, new)
    return text


def _clean_sentence(sentence: str) -> str:
    for ch in ('"', "/", "\\", "'"):
        sentence = sentence.replace(ch, "")
    return _SENTENCE_STRIP.sub("", sentence.strip().lower())


def _join_sentences(text: str) -> str:
    """Shared tail of both cleaners: list markers out, split on ". ", clean, re-join.

    Every sentence is kept, even an empty one (R2Gen's filter compares a string with ``[]``
    and so never drops anything); the result always ends with ``" ."``.
    """
    for old, new in _LIST_MARKERS:
        text = text.replace(old, new)
    sentences = text.strip().lower().split(". ")
    return " . ".join(_clean_sentence(s) for s in sentences) + " ."


def clean_report_iu_xray(report: str) -> str:
    """R2Gen's ``clean_report_iu_xray``: ``..`` → ``.`` (three passes), then the shared tail.

    Line breaks are left in place (R2Gen's tokeniser then splits on any whitespace).
    """
    return _join_sentences(_replace_repeatedly(report, "..", ".", 3))


def clean_report_mimic_cxr(report: str) -> str:
    """R2Gen's ``clean_report_mimic_cxr``: ``\\n`` → space, ``__`` → ``_`` (seven passes),
    double spaces → one (six passes), ``..`` → ``.`` (eight passes), then the shared tail."""
    text = report.replace("\n", " ")
    text = _replace_repeatedly(text, "__", "_", 7)
    text = _replace_repeatedly(text, "  ", " ", 6)
    text = _replace_repeatedly(text, "..", ".", 8)
    return _join_sentences(text)


CLEANERS: dict[str, Callable[[str], str]] = {
    "iu_xray": clean_report_iu_xray,
    "mimic_cxr": clean_report_mimic_cxr,
}

# ---------------------------------------------------------------------------------------
# Settings per dataset
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class R2GenSettings:
    """R2Gen's ``--dataset_name`` (cleaner), ``--threshold`` and ``--max_seq_length``."""

    cleaner: str
    threshold: int
    max_seq_length: int

    def __post_init__(self) -> None:
        if self.cleaner not in CLEANERS:
            raise UsageError(f"conv=r2gen: unknown cleaner {self.cleaner!r} (known: {', '.join(CLEANERS)})")
        if self.threshold < 1:
            raise UsageError(f"conv=r2gen: threshold must be at least 1, got {self.threshold}")
        if self.max_seq_length < 2:
            raise UsageError(
                f"conv=r2gen: max_seq_length must be at least 2 (BOS + one word), got {self.max_seq_length}")

    @property
    def kept_tokens(self) -> int:
        """Reference tokens that survive R2Gen's cut: the id list starts with BOS."""
        return self.max_seq_length - 1


#: R2Gen's run_iu_xray.sh / run_mimic_cxr.sh (and CvT2DistilGPT2's IU X-Ray settings)
DATASET_DEFAULTS: dict[str, R2GenSettings] = {
    "iu_xray": R2GenSettings("iu_xray", threshold=3, max_seq_length=60),
    "mimic_cxr": R2GenSettings("mimic_cxr", threshold=10, max_seq_length=100),
}


def dataset_family(dataset: str | None) -> str | None:
    """``"iu_xray/r2gen"`` -> ``"iu_xray"``; the family picks R2Gen's defaults."""
    return dataset.split("/", 1)[0] if dataset else None


def resolve_settings(dataset: str | None, *, cleaner: str | None = None, threshold: int | None = None,
                     max_seq_length: int | None = None) -> R2GenSettings:
    """Explicit parameters win; the rest come from the evaluated dataset's R2Gen defaults."""
    base = DATASET_DEFAULTS.get(dataset_family(dataset) or "")
    if base is None and None in (cleaner, threshold, max_seq_length):
        where = f"dataset {dataset!r}" if dataset else "scoring without a dataset"
        raise UsageError(
            f"conv=r2gen has no defaults for {where} (it knows {', '.join(sorted(DATASET_DEFAULTS))}); "
            "give all three parameters, e.g. nlg[conv=r2gen,cleaner=iu_xray,threshold=3,max_seq_length=60]"
        )
    return R2GenSettings(
        cleaner=cleaner if cleaner is not None else base.cleaner,  # type: ignore[union-attr]
        threshold=threshold if threshold is not None else base.threshold,  # type: ignore[union-attr]
        max_seq_length=max_seq_length if max_seq_length is not None else base.max_seq_length,  # type: ignore[union-attr]
    )

# ---------------------------------------------------------------------------------------
# Vocabulary and the reference round trip
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """The words R2Gen's tokeniser knows: cleaned train-report tokens seen ``threshold`` times.

    Only membership matters for the round trip (R2Gen's sorted id order never reaches the
    text), so a set is enough.
    """

    words: frozenset[str]
    cleaner: str
    threshold: int
    n_reports: int

    @classmethod
    def from_reports(cls, reports: Iterable[str], *, cleaner: str, threshold: int) -> Vocabulary:
        clean = CLEANERS[cleaner]
        counts: Counter[str] = Counter()
        n = 0
        for report in reports:
            counts.update(clean(report).split())
            n += 1
        return cls(frozenset(w for w, c in counts.items() if c >= threshold), cleaner, threshold, n)

    @property
    def size(self) -> int:
        """R2Gen's ``get_vocab_size()``: the words plus ``<unk>``."""
        return len(self.words | {UNK})

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.words)).encode("utf-8")).hexdigest()

    def encode(self, cleaned: str) -> list[str]:
        return [w if w in self.words else UNK for w in cleaned.split()]


def reference_text(report: str, vocab: Vocabulary, settings: R2GenSettings) -> str:
    """A reference as R2Gen's trainer (and CvT2DistilGPT2's data module) hands it to the scorers."""
    tokens = vocab.encode(CLEANERS[settings.cleaner](report))
    return " ".join(tokens[: settings.kept_tokens])


_SPACE_RUNS = re.compile(" +")


def dot_spacing(text: str) -> str:
    """CvT2DistilGPT2's last step on both sides: ``"."`` → ``" ."``, runs of spaces → one.

    Leading/trailing single spaces are kept as upstream keeps them (pycocoevalcap's ROUGE-L
    splits on ``" "`` and counts the empty token). Line breaks become spaces first — with a
    line break upstream's METEOR call desynchronises, so no published number depends on it.
    """
    return _SPACE_RUNS.sub(" ", one_line(text).replace(".", " ."))


#: characters a cleaned reference never contains (what the cleaner deletes; "." stays as a token)
_NOT_IN_CLEAN_TEXT = re.compile(r"[,?;*!%^&_+():<=>@A-Z\[\]{}\"/\\']")


def count_style_mismatches(hypotheses: Sequence[str]) -> int:
    """Predictions holding upper-case letters or punctuation that cleaned references never hold.

    They are scored as emitted (that is the convention), so such characters can only cost
    matches; the scorer reports the count so nobody mistakes the low number for the model's.
    """
    return sum(1 for h in hypotheses if _NOT_IN_CLEAN_TEXT.search(h))
