"""Canonical JSON and sha256: the one way anything in a run is identified.

Two specs that mean the same thing must hash the same on every machine, so hashing uses
sorted keys, fixed separators, no NaN, and only plain JSON types — anything else is a bug in
the caller and raises instead of being stringified into a machine-dependent value.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(root: Path, patterns: tuple[str, ...] = ("*",)) -> str:
    """Hash of a directory's files (relative path + content), e.g. a checkpoint directory."""
    root = Path(root)
    files = sorted({p for pat in patterns for p in root.rglob(pat) if p.is_file()})
    return sha256_json([[p.relative_to(root).as_posix(), sha256_file(p)] for p in files])
