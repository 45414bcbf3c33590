"""Text-only floor and ceiling generators: a random train report, one constant normal report,
and the reference itself.

They need no weights and no images, so they run on any machine and anchor every board: a
model that does not beat ``random_report`` and ``constant_normal`` has learned nothing
image-specific, and ``oracle`` checks that the scoring path gives the maximum to a perfect
answer (it is never eligible for a leaderboard).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Any, Sequence

import numpy as np

from rrg_bench.errors import DataError
from rrg_bench.api.generator import Generator, GeneratorContext
from rrg_bench.api.types import Generation, Study
from rrg_bench.metrics.labels import NO_FINDING, POSITIVE


def train_reports(ctx: GeneratorContext, generator: str) -> list[Study]:
    """The train split, or a ``DataError`` saying the generator cannot work without it."""
    studies = list(ctx.train_studies())
    if not studies:
        raise DataError(
            f"{generator} draws its reports from the train split of dataset {ctx.dataset!r}, "
            f"but that split is empty or was not provided"
        )
    return studies


def train_split_sha256(studies: Sequence[Study]) -> str:
    """Identity of the report pool: ordered (study id, reference sha256) pairs."""
    digest = hashlib.sha256()
    for study in studies:
        digest.update(f"{study.study_id}\x00{study.reference_sha256}\n".encode())
    return digest.hexdigest()


def draw_excluding(seed: int, n: int, excluded: int | None) -> int:
    """Index in ``range(n)`` drawn from ``seed``, never ``excluded``.

    Only ``random.Random(seed).random()`` is used because it is the one part of the module
    whose output Python promises not to change across versions.
    """
    choices = n - (excluded is not None)
    index = int(random.Random(seed).random() * choices)
    if excluded is not None and index >= excluded:
        index += 1
    return index


def _not_set_up(generator: str) -> RuntimeError:
    return RuntimeError(f"{generator}: setup(ctx) must be called before generate()")


class RandomReport(Generator):
    """A uniformly random train report per study (Boag et al. 2019, "random report retrieval").

    The draw is over train studies (so frequent texts are drawn more often, as in the
    literature) and uses only the per-study seed, so it does not depend on batch order and
    a resumed run writes the same text. A study never gets its own report (matters only when
    the train split itself is evaluated).
    """

    name = "random_report"
    version = "1"

    def setup(self, ctx: GeneratorContext) -> None:
        self._pool = train_reports(ctx, self.name)
        self._position = {s.study_id: i for i, s in enumerate(self._pool)}
        self._pool_sha256 = train_split_sha256(self._pool)

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        if not hasattr(self, "_pool"):
            raise _not_set_up(self.name)
        out = []
        for study, seed in zip(batch, seeds, strict=True):
            own = self._position.get(study.study_id)
            if own is not None and len(self._pool) == 1:
                raise DataError(
                    f"{self.name}: study {study.study_id} is the only train study, so there is no other report to draw"
                )
            donor = self._pool[draw_excluding(seed, len(self._pool), own)]
            out.append(Generation(study.study_id, donor.reference, {"retrieved_from": donor.study_id}))
        return out

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        if hasattr(self, "_pool"):
            fp["draw"] = "random.Random(study_seed).random() * n_train, own study excluded"
            fp["train"] = {"n": len(self._pool), "sha256": self._pool_sha256}
        return fp


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
    from rrg_bench.metrics.chexpert_rules import label_reports

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
    """The same normal train report for every study: the "template normal report" floor.

    Chest X-ray corpora are dominated by normal studies, so this single text scores well on
    n-gram metrics while carrying no image information; clinical-efficacy metrics expose it.
    """

    name = "constant_normal"
    version = "1"

    def setup(self, ctx: GeneratorContext) -> None:
        studies = train_reports(ctx, self.name)
        self._text, self._count = most_frequent_normal([s.reference for s in studies])
        self._n_train = len(studies)

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        if not hasattr(self, "_text"):
            raise _not_set_up(self.name)
        return [Generation(study.study_id, self._text) for study in batch]

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["selection"] = CONSTANT_NORMAL_RULE
        if hasattr(self, "_text"):
            fp["report_sha256"] = hashlib.sha256(self._text.encode("utf-8")).hexdigest()
            fp["report_count"] = self._count
            fp["n_train"] = self._n_train
        return fp


class Oracle(Generator):
    """Returns the reference: the ceiling that checks the scoring path, never on a board."""

    name = "oracle"
    version = "1"
    eligible = False

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        return [Generation(study.study_id, study.reference) for study in batch]
