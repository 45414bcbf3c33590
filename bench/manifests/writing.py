"""Writing manifests: what the maintainers' builders and the users' preparers produce.

Why byte-stable output: a committed manifest is identified by its sha256, and a builder re-run
must reproduce it byte for byte (tests check it), so key order, separators and line endings
are fixed here and nowhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rrg_bench.hashing import sha256_bytes

#: schema tag written into every manifest.yaml this module writes
MANIFEST_SCHEMA = "bench.manifest/1"

#: ``progress(description, total) -> advance``; ``advance(n)`` marks n more items done. The
#: same protocol as ``bench.progress.ProgressReporter.task``; library code never prints.
Progress = Callable[[str, int], Callable[[int], Any]]


def jsonl_bytes(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """One compact JSON object per line, keys in the given order, UTF-8, ``\\n`` endings."""
    return "".join(json.dumps(dict(r), ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")


def yaml_bytes(data: Mapping[str, Any]) -> bytes:
    """YAML in the given key order (the order is part of the committed bytes)."""
    import yaml

    text: str = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return text.encode("utf-8")


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file + ``os.replace`` so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_manifest_dir(
    out_dir: Path,
    header: Mapping[str, Any],
    rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    split_extra: Mapping[str, Mapping[str, Any]] | None = None,
    trailer: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<split>.jsonl`` files and then ``manifest.yaml`` (last, so it names complete files).

    ``header`` keys come first in manifest.yaml, then ``splits`` (studies, images, jsonl
    sha256 and ``split_extra``), then ``trailer``. Output depends only on the inputs, so a
    builder re-run reproduces the committed bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    splits: dict[str, Any] = {}
    for split, rows in rows_by_split.items():
        data = jsonl_bytes(rows)
        atomic_write(out_dir / f"{split}.jsonl", data)
        info: dict[str, Any] = {
            "studies": len(rows),
            "images": sum(len(r.get("images", ())) for r in rows),
            "jsonl_sha256": sha256_bytes(data),
        }
        info.update((split_extra or {}).get(split, {}))
        splits[split] = info
    manifest = {"schema": MANIFEST_SCHEMA, **header, "splits": splits, **(trailer or {})}
    path = out_dir / "manifest.yaml"
    atomic_write(path, yaml_bytes(manifest))
    return path
