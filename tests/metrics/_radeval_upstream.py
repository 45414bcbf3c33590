"""RadEval 2.2.1's outputs recorded on fixed inputs (tests/fixtures/radeval/upstream_outputs.json,
written by record_upstream.py beside it in a transformers-5 environment) and the tiny models
they were recorded on. Loading checks that the tiny files are the bytes the outputs came from."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "radeval"
TINY = FIXTURES / "tiny"


@lru_cache(maxsize=1)
def inputs() -> dict[str, Any]:
    return json.loads((FIXTURES / "inputs.json").read_text())


@lru_cache(maxsize=1)
def upstream() -> dict[str, Any]:
    recorded = json.loads((FIXTURES / "upstream_outputs.json").read_text())
    for rel, digest in recorded["tiny_files_sha256"].items():
        got = hashlib.sha256((TINY / rel).read_bytes()).hexdigest()
        assert got == digest, f"{TINY / rel} is not the file RadEval's outputs were recorded on; re-record"
    return recorded


def ids(n: int) -> list[str]:
    return [f"s{i:02d}" for i in range(n)]
