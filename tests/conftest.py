"""Fixtures shared by every test directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test helpers import as ``helpers`` (tests/helpers). ``tests.helpers`` cannot work: a
# dependency installs a top-level ``tests`` package into site-packages, which shadows this
# folder. pytest's default import mode already puts tests/ on sys.path; this makes it
# independent of the import mode.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from helpers import iu_source_dir  # noqa: E402


@pytest.fixture(scope="session")
def iu_source() -> Path:
    """The shared IU X-Ray text files (annotation.json, Open-i CSVs, ReXrank JSON), read-only."""
    path = iu_source_dir()
    if not (path / "annotation.json").is_file():
        pytest.skip(f"IU X-Ray text not found at {path} (set BENCH_SHARED to the folder holding data/iu_xray)")
    return path
