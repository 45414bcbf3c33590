"""The ``oracle`` generator: each study's reference, unchanged.

A ceiling that checks the scoring path: every reference-based metric should give it its maximum,
so a result that is not maximal points at reference handling, not at a model. It is never
eligible for a leaderboard.
"""

from __future__ import annotations

from collections.abc import Sequence

from rrg_bench.api.generator import Generator
from rrg_bench.api.types import Generation, Study


class Oracle(Generator):
    """Returns the reference: the ceiling that checks the scoring path, never on a board."""

    name = "oracle"
    version = "1"
    eligible = False

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        return [Generation(study.study_id, study.reference) for study in batch]
