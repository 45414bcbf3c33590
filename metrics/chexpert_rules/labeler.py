"""The offline CheXpert-style rule labeler: report text -> 14 CheXpert class codes, no weights.

Why rules and not a network: see the package docstring — this labeler must run everywhere.
Everything that decides a label is in this module and in ``phrases.py``; both are hashed into
the scorer's fingerprint, so any change to them shows in records.

Pipeline (the CheXpert labeler's stages, Irvin et al. 2019, with NegEx-style rules instead of
NegBio's dependency parses):

1. clean: lower-case, ``and/or`` -> ``or``, ``a/b`` -> ``a or b``, IU X-Ray's ``XXXX``
   anonymisation tokens become the inert word ``xxxx`` (counts as a word, matches nothing);
2. split into sentences (``.`` not inside a number, ``!``, newline);
3. find mentions of the 13 observations (``phrases``), heart/mediastinum
   subjects with a qualifier, and abnormalities outside the 13 ("other findings");
4. classify each mention: pre-negation uncertainty ("cannot exclude") > negation > uncertainty,
   each trigger with a scope bounded by termination terms and the sentence;
5. aggregate per report: positive > uncertain > negative > blank; No Finding is positive iff
   no pathology (nor other finding) has a positive or uncertain mention, Support Devices
   excluded, else blank.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from rrg_bench.metrics.chexpert_rules import phrases as P
from rrg_bench.metrics.common.labels import BLANK, CHEXPERT_LABELS, NEGATIVE, NO_FINDING, POSITIVE, UNCERTAIN

#: Bumped whenever phrases or rules change what the labeler emits (part of the fingerprint).
LABELER_VERSION = "1"

_OTHER = "__other__"  # pseudo-label of abnormalities outside the 13 observations
_CARDIOMEGALY = CHEXPERT_LABELS.index("Cardiomegaly")
_SUPPORT_DEVICES = CHEXPERT_LABELS.index("Support Devices")
_HEART_FAILURE = re.compile(r"(?:congestive\s+)?heart\s+failure|chf")


# ---- compiled patterns --------------------------------------------------------------------------

def _compile(fragments: Iterable[str]) -> re.Pattern[str]:
    """One alternation matched at word edges; punctuation (``?``, ``;``, ``:``) matches anywhere."""
    return re.compile(r"(?:(?<![a-z0-9\-])|(?=[?;:]))(?:" + "|".join(f"(?:{f})" for f in fragments)
                      + r")(?:(?<=[?;:])|(?![a-z0-9]))")


_MENTION_RE = {CHEXPERT_LABELS.index(k): _compile(v) for k, v in P.MENTIONS.items()}
_MENTION_RE[_OTHER] = _compile(P.OTHER_FINDINGS)  # type: ignore[index]
_UNCERTAIN_MENTION_RE = {CHEXPERT_LABELS.index(k): _compile(v) for k, v in P.UNCERTAIN_MENTIONS.items()}
_EXCLUSION_RE = {CHEXPERT_LABELS.index(k): _compile(v) for k, v in P.EXCLUSIONS.items()}
_SUBJECT_RE = {CHEXPERT_LABELS.index(k): _compile([v]) for k, v in P.ATTRIBUTE_SUBJECTS.items()}
_ABNORMAL_RE = {CHEXPERT_LABELS.index(k): _compile([v]) for k, v in P.ABNORMAL_QUALIFIERS.items()}
_NORMAL_RE = _compile([P.NORMAL_QUALIFIERS])
_STABLE_RE = _compile([P.UNCERTAIN_QUALIFIERS])
_BOUNDARY_RE = _compile([P.ATTRIBUTE_BOUNDARIES])
_TRIGGERS = {
    "preneg_pre": _compile(P.PRE_NEG_UNCERTAIN_PRE),
    "preneg_post": _compile(P.PRE_NEG_UNCERTAIN_POST),
    "pseudo": _compile(P.PSEUDO_NEGATIONS),
    "neg_pre": _compile(P.NEGATION_PRE),
    "neg_post": _compile(P.NEGATION_POST),
    "unc_pre": _compile(P.UNCERTAIN_PRE),
    "unc_post": _compile(P.UNCERTAIN_POST),
    "conj": _compile(P.CONJ_UNCERTAIN),
}
_TERMINATOR_RE = _compile(P.TERMINATORS)
_HARD_STOP_RE = _compile([r"there|which|with|but|however|although|though|whereas|[;:]"])

_ANON_RE = re.compile(r"(?<![a-z0-9])x{2,}(?![a-z0-9])")
_RULE_OUT_RE = re.compile(r"(?<![a-z0-9])r/o(?![a-z0-9])")
_SLASH_RE = re.compile(r"(?<=[a-z])/(?=[a-z])")
_SENTENCE_RE = re.compile(r"(?<![0-9])\.|\.(?![0-9])|[!\n]")
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*|[?;:]")


# ---- text preparation -----------------------------------------------------------------------------

def clean(text: str) -> str:
    """Lower-case and normalise the way the CheXpert loader does; ``XXXX`` -> inert ``xxxx``."""
    text = text.lower()
    text = _ANON_RE.sub("xxxx", text)
    text = _RULE_OUT_RE.sub("rule out", text.replace("and/or", "or"))
    text = _SLASH_RE.sub(" or ", text)
    return text


def sentences(text: str) -> list[str]:
    """Sentences of a cleaned report (empty pieces dropped, whitespace collapsed)."""
    out = []
    for piece in _SENTENCE_RE.split(text):
        piece = " ".join(piece.split())
        if piece:
            out.append(piece)
    return out


# ---- one sentence ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mention:
    """A matched observation in a sentence: token span [first, last] and its class code."""

    label: Any  # index into CHEXPERT_LABELS, or _OTHER
    first: int
    last: int
    text: str
    code: int


class _Sentence:
    """Tokens of one sentence and the positions of every trigger, computed once."""

    def __init__(self, text: str) -> None:
        self.text = text
        spans = [(m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
        self.starts = [s for s, _ in spans]
        self.n = len(spans)
        self._triggers: dict[str, list[tuple[int, int]]] = {}
        self.terminators = {self.tokens_of(m.start(), m.end())[0] for m in _TERMINATOR_RE.finditer(text)}
        self.hard_stops = {self.tokens_of(m.start(), m.end())[0] for m in _HARD_STOP_RE.finditer(text)}
        # commas are not tokens (a list "no a, b, c or d" must not exhaust a scope) but they
        # end the backward scope of post-triggers: "small effusion, heart size is normal"
        self.after_comma = {bisect_left(self.starts, m.end()) for m in re.finditer(",", text)}

    def tokens_of(self, start: int, end: int) -> tuple[int, int]:
        """First and last token index covered by characters [start, end)."""
        first = bisect_left(self.starts, start)
        last = max(first, bisect_left(self.starts, end) - 1)
        return first, last

    def triggers(self, kind: str) -> list[tuple[int, int]]:
        if kind not in self._triggers:
            found = [self.tokens_of(m.start(), m.end()) for m in _TRIGGERS[kind].finditer(self.text)]
            if kind.startswith("neg"):
                pseudo = self.triggers("pseudo")
                found = [t for t in found if not any(p[0] <= t[0] <= p[1] for p in pseudo)]
            self._triggers[kind] = found
        return self._triggers[kind]

    def _terminated(self, lo: int, hi: int) -> bool:
        """True if a termination term lies in the token range (lo, hi]."""
        return any(lo < t <= hi for t in self.terminators)

    def _pre_hits(self, kind: str, first: int, last: int, scope: int) -> bool:
        """A trigger ending before the mention's last token whose forward scope reaches it.

        The trigger may sit inside the mention span ("heart is *not* enlarged"); otherwise it
        must end at most ``scope`` tokens before the mention, with no terminator in between.
        """
        for _, t_last in self.triggers(kind):
            if t_last >= last:
                continue
            target = first if t_last < first else last
            if target - t_last <= scope and not self._terminated(t_last, target):
                return True
        return False

    def _post_hits(self, kind: str, last: int, scope: int) -> bool:
        for t_first, _ in self.triggers(kind):
            if t_first > last and t_first - last <= scope and not self._terminated(last, t_first) \
                    and not any(last < c <= t_first for c in self.after_comma):
                return True
        return False

    def classify(self, first: int, last: int, default: int) -> int:
        """Pre-negation uncertainty > negation > uncertainty > ``default`` (CheXpert's order)."""
        if self._pre_hits("preneg_pre", first, last, P.PRE_SCOPE_TOKENS) or \
                self._post_hits("preneg_post", last, P.POST_SCOPE_TOKENS):
            return UNCERTAIN
        if self._pre_hits("neg_pre", first, last, P.PRE_SCOPE_TOKENS) or \
                self._post_hits("neg_post", last, P.POST_SCOPE_TOKENS):
            return NEGATIVE
        if self._pre_hits("unc_pre", first, last, P.PRE_SCOPE_TOKENS) or \
                self._post_hits("unc_post", last, P.POST_SCOPE_TOKENS) or \
                self._pre_hits("conj", first, last, P.CONJ_SCOPE_TOKENS) or \
                self._post_hits("conj", last, P.CONJ_SCOPE_TOKENS):
            return UNCERTAIN
        return default


def _excluded(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(start < e and end > s for s, e in spans)


def _attribute_mentions(sent: _Sentence, label: int) -> list[Mention]:
    """Heart/mediastinum subjects turned into mentions by the nearest qualifier in their clause.

    A pre-modifying abnormal qualifier ("enlarged heart", "enlargement of the cardiac
    silhouette") wins; otherwise the first qualifier after the subject (up to a hard stop;
    an abnormal one only if no other structure is named in between), else the nearest one
    before it. Abnormal -> classified like any mention; normal -> negative; stable,
    unchanged, borderline -> uncertain (the CheXpert labeler's rules for these subjects).
    """
    text = sent.text
    subjects = list(_SUBJECT_RE[label].finditer(text))
    if not subjects:
        return []
    quals: list[tuple[int, int, str]] = []
    for kind, rx in (("abnormal", _ABNORMAL_RE[label]), ("normal", _NORMAL_RE), ("stable", _STABLE_RE)):
        for m in rx.finditer(text):
            f, l = sent.tokens_of(m.start(), m.end())
            quals.append((f, l, kind))
    if not quals:
        return []
    quals.sort()
    boundaries = [sent.tokens_of(m.start(), m.end())[0] for m in _BOUNDARY_RE.finditer(text)]
    out = []
    for m in subjects:
        s_first, s_last = sent.tokens_of(m.start(), m.end())
        stop = min([t for t in sent.hard_stops if t > s_last] + [sent.n])
        after = next((q for q in quals if s_last < q[0] < min(stop, s_last + 1 + P.QUALIFIER_AFTER_TOKENS)), None)
        if after and after[2] == "abnormal" and any(s_last < b < after[0] for b in boundaries):
            after = None
        start_stop = max([t for t in sent.hard_stops | sent.terminators if t < s_first] + [-1])
        before = [q for q in quals if max(start_stop, s_first - P.QUALIFIER_BEFORE_TOKENS - 1) < q[1] < s_first]
        before_q = before[-1] if before else None
        if before_q and before_q[2] == "abnormal":
            chosen = before_q
        else:
            chosen = after or before_q
        if chosen is None:
            continue
        first, last = min(s_first, chosen[0]), max(s_last, chosen[1])
        if chosen[2] == "abnormal":
            code = sent.classify(first, last, POSITIVE)
        elif chosen[2] == "normal":
            code = NEGATIVE
        else:
            code = UNCERTAIN
        out.append(Mention(label, first, last, text[m.start():m.end()], code))
    return out


@lru_cache(maxsize=1 << 16)
def label_sentence(text: str) -> tuple[Mention, ...]:
    """Every classified mention in one cleaned sentence (cached: reports repeat sentences)."""
    sent = _Sentence(text)
    mentions: list[Mention] = []
    for label, rx in _MENTION_RE.items():
        matches = list(rx.finditer(text))
        if not matches:
            continue
        excl = [(e.start(), e.end()) for e in _EXCLUSION_RE[label].finditer(text)] if label in _EXCLUSION_RE else []
        for m in matches:
            if excl and _excluded(excl, m.start(), m.end()):
                continue
            first, last = sent.tokens_of(m.start(), m.end())
            mentions.append(Mention(label, first, last, m.group(0), sent.classify(first, last, POSITIVE)))
    for label, rx in _UNCERTAIN_MENTION_RE.items():
        for m in rx.finditer(text):
            first, last = sent.tokens_of(m.start(), m.end())
            mentions.append(Mention(label, first, last, m.group(0), sent.classify(first, last, UNCERTAIN)))
    for label in _SUBJECT_RE:
        mentions.extend(_attribute_mentions(sent, label))
    return tuple(mentions)


# ---- one report -------------------------------------------------------------------------------------

_PRIORITY = {POSITIVE: 3, UNCERTAIN: 2, NEGATIVE: 1, BLANK: 0}


def label_mentions(text: str) -> list[Mention]:
    """All classified mentions of a raw report, sentence by sentence (for inspection and tests)."""
    return [m for s in sentences(clean(text)) for m in label_sentence(s)]


def label_report(text: str) -> np.ndarray:
    """The 14 codes of one report (see ``label_reports``)."""
    codes = np.zeros(len(CHEXPERT_LABELS), dtype=np.int8)
    finding = False
    for m in label_mentions(text):
        positive_like = m.code in (POSITIVE, UNCERTAIN)
        if m.label == _OTHER:
            finding = finding or positive_like
            continue
        if positive_like and m.label != _SUPPORT_DEVICES:
            finding = True
        if _PRIORITY[m.code] > _PRIORITY[int(codes[m.label])]:
            codes[m.label] = m.code
        # CheXpert: a positive or uncertain heart-failure mention makes Cardiomegaly uncertain
        if positive_like and _HEART_FAILURE.fullmatch(m.text) and \
                _PRIORITY[UNCERTAIN] > _PRIORITY[int(codes[_CARDIOMEGALY])]:
            codes[_CARDIOMEGALY] = UNCERTAIN
    codes[NO_FINDING] = BLANK if finding else POSITIVE
    return codes


def label_reports(texts: Sequence[str]) -> np.ndarray:
    """Label reports: int8 array [n, 14] of codes 0 blank / 1 positive / 2 negative / 3 uncertain.

    Columns follow ``metrics.common.labels.CHEXPERT_LABELS``. Deterministic; identical texts are
    labelled once. A report without any mention (including the empty string) gets No Finding
    = 1 and blank elsewhere, as the CheXpert labeler does. No Finding is never 2.
    """
    out = np.zeros((len(texts), len(CHEXPERT_LABELS)), dtype=np.int8)
    seen: dict[str, np.ndarray] = {}
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"report {i}: expected str, got {type(text).__name__}")
        row = seen.get(text)
        if row is None:
            row = seen[text] = label_report(text)
        out[i] = row
    return out
