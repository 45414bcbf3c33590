"""The ``constant_normal`` generator: the same normal train report for every study.

Chest X-ray corpora are dominated by normal studies, so this single text scores well on n-gram
metrics while carrying no image information; clinical-efficacy metrics expose it. Normality is
decided by the offline rule labeler, so the choice needs no weights and is the same everywhere.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from rrg_bench.api.generator import Generator, GeneratorContext
from rrg_bench.api.types import Generation, Study
from rrg_bench.baselines.common.report_pool import not_set_up, train_reports
from rrg_bench.errors import DataError
from rrg_bench.metrics.common.labels import NO_FINDING, POSITIVE

#: the selection rule, recorded verbatim in the fingerprint
CONSTANT_NORMAL_RULE = (
    "most frequent exact train reference text whose metrics.chexpert_rules label for "
    "'No Finding' is positive (1); ties -> lexicographically smallest text"
)


def most_frequent_normal(texts: Sequence[str]) -> tuple[str, int]:
    """(text, count) chosen by ``CONSTANT_NORMAL_RULE``; ``DataError`` if none qualifies.

    Each distinct text is labelled once; the choice depends only on the multiset of texts,
    not on their order.
    """
    from rrg_bench.metrics.chexpert_rules.labeler import label_reports

    counts = Counter(texts)
    distinct = sorted(counts)
    labels = np.asarray(label_reports(distinct))
    if labels.shape != (len(distinct), 14):
        raise RuntimeError(f"label_reports returned shape {labels.shape}, expected ({len(distinct)}, 14)")
    normal = [t for t, row in zip(distinct, labels) if int(row[NO_FINDING]) == POSITIVE]
    if not normal:
        raise DataError(
            f"constant_normal: none of the {len(distinct)} distinct train reports is labelled "
            f"'No Finding' by metrics.chexpert_rules, so there is no normal report to repeat"
        )
    best = min(normal, key=lambda t: (-counts[t], t))
    return best, counts[best]


class ConstantNormal(Generator):
    """The same normal train report for every study: the "template normal report" floor."""

    name = "constant_normal"
    version = "1"

    def setup(self, ctx: GeneratorContext) -> None:
        studies = train_reports(ctx, self.name)
        self._text, self._count = most_frequent_normal([s.reference for s in studies])
        self._n_train = len(studies)

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        if not hasattr(self, "_text"):
            raise not_set_up(self.name)
        return [Generation(study.study_id, self._text) for study in batch]

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["selection"] = CONSTANT_NORMAL_RULE
        if hasattr(self, "_text"):
            fp["report_sha256"] = hashlib.sha256(self._text.encode("utf-8")).hexdigest()
            fp["report_count"] = self._count
            fp["n_train"] = self._n_train
        return fp
