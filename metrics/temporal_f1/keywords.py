"""The text side of RadEval's temporal F1 (``radeval/metrics/f1temporal/f1temporal.py``, itself
from X-iZhang/Libra ``libra/eval/temporal_f1.py``): keyword list, cleaning, regex matching and
the per-pair F1. Pure Python: the stanza half lives in ``stanza_ner.py``."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Bannur et al. (CVPR 2023) temporal keywords, as RadEval lists them (44 words)
KEYWORDS: frozenset[str] = frozenset((
    "bigger", "change", "cleared", "constant", "decrease", "decreased", "decreasing", "elevated", "elevation",
    "enlarged", "enlargement", "enlarging", "expanded", "greater", "growing", "improved", "improvement",
    "improving", "increase", "increased", "increasing", "larger", "new", "persistence", "persistent",
    "persisting", "progression", "progressive", "reduced", "removal", "resolution", "resolved", "resolving",
    "smaller", "stability", "stable", "stably", "unchanged", "unfolded", "worse", "worsen", "worsened",
    "worsening", "unaltered",
))
#: stanza entity types RadEval keeps
NER_TYPES = frozenset({"OBSERVATION", "OBSERVATION_MODIFIER"})
EPSILON = 1e-10
# RadEval joins a *set*, so its alternation order varies between processes; whole-word matches
# of a fixed word list do not depend on it (no keyword is a whole-word prefix of another match)
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(KEYWORDS)) + r")\b")


def clean_text(text: str) -> str:
    """RadEval's ``clean_text``, step for step."""
    text = re.sub(r"\n+", " ", text)
    text = re.sub(r"[_-]+", " ", text)
    text = re.sub(r"\(___, __, __\)", "", text)
    text = re.sub(r"---, ---, ---", "", text)
    text = re.sub(r"\(__, __, ___\)", "", text)
    text = re.sub(r"[_-]+", " ", text)
    text = re.sub(r"[^\w\s.,:;()-]", "", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def regex_entities(text: str) -> set[str]:
    """Keywords found as whole words in the cleaned, lower-cased text."""
    return {m.group().lower() for m in _PATTERN.finditer(clean_text(text).lower())}


def keep_ner_entities(entities: Iterable[tuple[str, str]]) -> set[str]:
    """Of stanza's (text, type) entities: observation (modifier) entities whose whole lower-cased
    text is a keyword."""
    return {t.lower() for t, kind in entities if kind in NER_TYPES} & KEYWORDS


def tem_f1(hyp_entities: set[str], ref_entities: set[str], epsilon: float = EPSILON) -> float:
    """RadEval's ``calculate_tem_score``: 1 when both sets are empty, epsilon when only the
    reference's is, else an epsilon-smoothed set F1 (same operation order)."""
    if not ref_entities:
        return 1.0 if not hyp_entities else epsilon
    tp = len(hyp_entities & ref_entities)
    precision = (tp + epsilon) / (len(hyp_entities) + epsilon)
    recall = (tp + epsilon) / (len(ref_entities) + epsilon)
    return (2 * precision * recall) / (precision + recall + epsilon)
