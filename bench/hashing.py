"""Canonical JSON and sha256: the one way anything in a run is identified (and the one module
that hashes files, directories and seeds).

Two specs that mean the same thing must hash the same on every machine, so hashing uses
sorted keys, fixed separators, no NaN, and only plain JSON types — anything else is a bug in
the caller and raises instead of being stringified into a machine-dependent value.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _memo_dir() -> Path | None:
    from rrg_bench.paths import cache_root

    try:
        return cache_root() / "sha256"
    except Exception:  # no usable cache directory: hashing still works, only slower
        return None


def sha256_file_memo(path: str | Path) -> str:
    """``sha256_file`` memoised by (absolute path, size, mtime_ns): a 1.3 GB checkpoint is hashed
    once per machine, not once per command. A read-only or missing cache only costs re-hashing."""
    path = Path(path).resolve()
    st = path.stat()
    ident = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    memo_dir = _memo_dir()
    record = memo_dir / (sha256_text(str(path)) + ".json") if memo_dir is not None else None
    try:
        memo = json.loads(record.read_text()) if record is not None else {}
        if {k: memo.get(k) for k in ident} == ident and isinstance(memo.get("sha256"), str):
            return str(memo["sha256"])
    except (OSError, ValueError):
        pass
    value = sha256_file(path)
    if record is not None:
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            tmp = record.with_name(record.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**ident, "sha256": value}))
            os.replace(tmp, record)
        except OSError:
            pass
    return value


def sha256_tree(root: str | Path, patterns: tuple[str, ...] = ("*",)) -> str:
    """A directory's identity: sha256 over sorted (relative path, file sha256) lines of the files
    matching ``patterns``; hidden entries (``.git``, ``.cache``, sidecars) are skipped."""
    root = Path(root)
    files = sorted({p for pat in patterns for p in root.rglob(pat) if p.is_file()})
    digest = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        digest.update(f"{rel.as_posix()}\x00{sha256_file_memo(p)}\n".encode())
    return digest.hexdigest()


def sha256_path(path: str | Path) -> str:
    """A file's or a directory's sha256 (``sha256_tree`` for directories)."""
    p = Path(path)
    return sha256_tree(p) if p.is_dir() else sha256_file_memo(p)


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from H(parts joined by NUL), e.g. (run seed, study id): independent of order
    of work, resumes and process count."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF
