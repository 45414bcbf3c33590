"""The generator contract: what a report generator must provide to be run by the harness.

A generator sees studies (never references it should not see: the harness hands it the
train split through ``GeneratorContext.train_studies`` and the evaluated studies through
``generate``) and returns one ``Generation`` per study. Determinism is the generator's
promise: given the same params, checkpoint and per-study seed it writes the same text, so
a resumed run is byte-identical to an uninterrupted one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from rrg_bench.api.params import NoParams, validated
from rrg_bench.api.types import Generation, Study
from rrg_bench.hashing import derive_seed


def study_seed(run_seed: int, study_id: str) -> int:
    """Seed for one study, H(run seed, study id): independent of batch order and of resumes."""
    return derive_seed(run_seed, study_id)


@dataclass
class GeneratorContext:
    """What the runner gives a generator at setup.

    ``train_studies`` is a callable so that generators that do not need the train split
    (e.g. a checkpoint-only model) never pay for loading it.
    """

    dataset: str
    split: str
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 8
    train_studies: Callable[[], Sequence[Study]] = field(default=lambda: ())
    cache_dir: Path | None = None
    progress: bool = True
    #: ``(description, total) -> advance(n)``: a bar in the command's one progress display (on stderr);
    #: generators with long set-up (embedding a train split) report through it
    progress_task: Callable[[str, int], Callable[[int], None]] | None = None


class Generator(ABC):
    """Base class of every registered generator (built-in or plugin).

    Subclasses set ``name`` and ``version`` (bump ``version`` whenever outputs can change)
    and may declare a pydantic ``Params`` model: ``--model-arg key=value`` options and
    ``--checkpoint`` are validated against it, so a typo is an error, not a silent default.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    #: False for sanity generators (oracle) that must never reach a leaderboard
    eligible: ClassVar[bool] = True
    #: how tables, plots and records show the system (default: the registry name)
    display_name: ClassVar[str | None] = None
    #: True for a re-implementation the paper's authors never released code for: its rows always say so
    unofficial: ClassVar[bool] = False
    #: True if ``generate`` reads image files (the runner then checks they exist up front)
    needs_images: ClassVar[bool] = False
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, **params: Any) -> None:
        self.params = validated(self.Params, params, f"generator {self.name!r}")

    def setup(self, ctx: GeneratorContext) -> None:  # noqa: B027 -- an optional hook, not abstract
        """Load weights, build indexes. Called once before the first ``generate``."""

    @abstractmethod
    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        """One Generation per study, same order. ``seeds[i]`` is ``study_seed(run, id_i)``."""

    def fingerprint(self) -> dict[str, Any]:
        """Everything that can change outputs: name, version, params, checkpoint hashes."""
        return {
            "name": self.name,
            "version": self.version,
            "params": self.params.model_dump(mode="json"),
        }
