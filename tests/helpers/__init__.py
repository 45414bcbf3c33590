"""Shared test helpers: where the shared (never committed) data lives, fake data writers."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``$BENCH_SHARED`` or ``<repo>/../shared``: real IU X-Ray text for tests, outside the repo."""
    return Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared")).resolve()


def iu_source_dir() -> Path:
    return shared_dir() / "data" / "iu_xray"


def only_record(directory: Path) -> Path:
    """The one results record a run or score directory holds (``records/<fingerprint>/results.json``)."""
    found = sorted(Path(directory).rglob("records/*/results.json"))
    assert len(found) == 1, f"expected exactly one record under {directory}, found {found}"
    return found[0]
