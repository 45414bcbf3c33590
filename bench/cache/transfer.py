"""``bench cache export|import``: move annotations (hashes and values, never report text) between machines."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.cache.keys import cache_key, encode_value
from rrg_bench.cache.store import CacheError

if TYPE_CHECKING:
    from rrg_bench.cache.store import AnnotationCache


def export_rows(self: AnnotationCache, path: Path | str, namespace: str | None = None) -> int:
    """Write rows as JSON Lines (gzip if the name ends in .gz); returns the row count."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with self._lock:
        conn = self._connect()
        query = "SELECT key, namespace, normaliser, text_hash, value FROM annotations"
        args: tuple[Any, ...] = ()
        if namespace is not None:
            query += " WHERE namespace = ?"
            args = (namespace,)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with opener(tmp, "wt", encoding="utf-8") as out:
            for key, ns, norm, h, value in conn.execute(query + " ORDER BY namespace, key", args):
                out.write(json.dumps({"key": key, "namespace": ns, "normaliser": norm, "text_hash": h,
                                      "value": json.loads(value)}, sort_keys=True) + "\n")
                n += 1
        os.replace(tmp, path)
    return n

def import_rows(self: AnnotationCache, path: Path | str) -> int:
    """Add the rows of an ``export`` file; returns how many were new. Keys are re-checked."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    now = time.time()
    try:
        with opener(path, "rt", encoding="utf-8") as src:
            for lineno, line in enumerate(src, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    key, ns, norm, h = rec["key"], rec["namespace"], rec["normaliser"], rec["text_hash"]
                    value = encode_value(rec["value"], ns)
                except (ValueError, KeyError, TypeError) as exc:
                    raise CacheError(f"{path}:{lineno}: not a cache export row ({exc})") from None
                if cache_key(ns, norm, h) != key:
                    raise CacheError(f"{path}:{lineno}: key does not match its namespace/normaliser/text hash; "
                                     f"the file is corrupt or was edited")
                rows.append((key, ns, norm, h, value, now))
    except OSError as exc:
        raise CacheError(f"{path}: cannot read ({exc})") from None

    def insert(conn: sqlite3.Connection) -> int:
        before = conn.total_changes
        conn.executemany("INSERT OR IGNORE INTO annotations(key, namespace, normaliser, text_hash, value, "
                         "created) VALUES (?, ?, ?, ?, ?, ?)", rows)
        return conn.total_changes - before

    return int(self._write_retrying(insert))
