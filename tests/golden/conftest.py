from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared")).resolve()
IU_ROOT = SHARED / "data" / "iu_xray"


@pytest.fixture(scope="session")
def iu_root() -> Path:
    if not (IU_ROOT / "annotation.json").is_file():
        pytest.skip(f"IU X-Ray text not found at {IU_ROOT} (set BENCH_SHARED)")
    return IU_ROOT
