"""The data-preparer contract: ``bench data prepare DATASET --source DIR`` for credentialed data.

Credentialed text (MIMIC-CXR, CheXpert Plus) never ships with rrg-bench; a preparer builds the
dataset's local reference files from the user's own copy, under their data root, so the
dataset can then verify them against the shipped manifest hashes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol


class PrepareReport(Protocol):
    def summary(self) -> str:
        """A few plain lines for the terminal: what was written where, with counts."""
        ...


@dataclass
class PrepareRequest:
    source: Path  # the user's credentialed copy (PhysioNet tree, CheXpert Plus folder)
    output_dir: Path  # where the prepared files go (default: <data root>/<Preparer.subdir>)
    check_counts: bool = True  # require the published study/image counts
    progress: Callable[[str, int], Callable[[int], None]] | None = None  # (description, total) -> advance
    options: dict[str, str] = field(default_factory=dict)  # preparer-specific, e.g. rexrank_json


class Preparer(ABC):
    """Registered under the dataset's name (kind ``preparers``)."""

    #: default output folder under the data root, e.g. ``mimic_cxr/official``
    subdir: ClassVar[str]
    #: option name -> help; anything else in ``PrepareRequest.options`` is a usage error
    options: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def prepare(self, request: PrepareRequest) -> PrepareReport:
        """Write the prepared files; raise ``DataError`` naming the file that is missing or wrong."""
