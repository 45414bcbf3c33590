"""The train reports a text baseline draws from (random_report, constant_normal).

Both floors read only the train split of the evaluated dataset, so both fail the same way when it
is missing, and both refuse ``generate`` before ``setup`` with the same programming error.
"""

from __future__ import annotations

from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.types import Study
from rrg_bench.errors import DataError


def train_reports(ctx: GeneratorContext, generator: str) -> list[Study]:
    """The train split, or a ``DataError`` saying the generator cannot work without it."""
    studies = list(ctx.train_studies())
    if not studies:
        raise DataError(
            f"{generator} draws its reports from the train split of dataset {ctx.dataset!r}, "
            f"but that split is empty or was not provided"
        )
    return studies


def not_set_up(generator: str) -> RuntimeError:
    return RuntimeError(f"{generator}: setup(ctx) must be called before generate()")
