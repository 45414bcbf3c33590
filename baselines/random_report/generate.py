"""The ``random_report`` generator: a uniformly random train report per study.

It needs no weights and no images, so it runs on any machine and anchors every board: a model that
does not beat it has learned nothing image-specific. The draw uses only the per-study seed, so a
study's report does not depend on batch order or resumes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from rrg_bench.api.generator import Generator, GeneratorContext
from rrg_bench.api.types import Generation, Study
from rrg_bench.baselines.common.report_pool import not_set_up, train_reports
from rrg_bench.errors import DataError


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
            raise not_set_up(self.name)
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
