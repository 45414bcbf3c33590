"""The dataset contract: a named, versioned manifest plus a loader for the user's copy.

The manifest (shipped in the wheel under ``data_manifests/``) holds study ids, image paths
and the sha256 of every reference text — never the text of credentialed data. ``studies``
rebuilds each reference from the user's files by the manifest's named policy and checks its
hash, so a score always says exactly which references it was computed against.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.types import Study

DATA_ROOT_ENV = "BENCH_DATA_ROOT"


@dataclass
class VerifyReport:
    """What ``bench data verify`` prints: what is there, what is missing, where to get it."""

    dataset: str
    data_root: Path | None
    ok: bool
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # e.g. "test/CXR1_IM-0001: reference sha256 differs"
    how_to_get: str = ""


class Dataset(ABC):
    """Base of every registered dataset."""

    name: ClassVar[str]  # "iu_xray/r2gen"
    description: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    #: how the reference text is built from the source, e.g. "findings" or "findings+impression"
    reference_policy: ClassVar[str]

    def __init__(self, data_root: Path | str | None = None) -> None:
        root = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV)
        self.data_root = Path(root).expanduser().resolve() if root else None

    @abstractmethod
    def studies(self, split: str) -> list[Study]:
        """All studies of ``split`` in manifest order, references verified.

        Raises ``DataError`` naming the root, file or study (first 20 and the count) when
        anything differs from the manifest.
        """

    @abstractmethod
    def verify(self) -> VerifyReport:
        """Check every split without raising; list what is present, missing or different."""

    @abstractmethod
    def identity(self, split: str) -> dict[str, Any]:
        """The record's ``dataset`` block: name, manifest_version, manifest_sha256, split,
        reference_policy, n_expected, study_ids_sha256, references_sha256 (hash of the
        ordered (study_id, reference_sha256) pairs). Needs no data root."""
