"""``bench cache stats|verify``: what the cache holds and whether every row is what its key says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.cache.keys import cache_key

if TYPE_CHECKING:
    from rrg_bench.cache.store import AnnotationCache


def stats(self: AnnotationCache) -> dict[str, Any]:
    """Entries per namespace, lifetime and last-lookup hit/miss counts, file size, this process."""
    with self._lock:
        conn = self._connect()
        entries = dict(conn.execute(
            "SELECT namespace, COUNT(*) FROM annotations GROUP BY namespace").fetchall())
        totals = {ns: (h, m, n) for ns, h, m, n in conn.execute(
            "SELECT namespace, SUM(hits), SUM(misses), COUNT(*) FROM lookups GROUP BY namespace")}
        last = {ns: (at, h, m) for ns, at, h, m in conn.execute(
            "SELECT l.namespace, l.at, l.hits, l.misses FROM lookups l "
            "JOIN (SELECT namespace, MAX(id) AS id FROM lookups GROUP BY namespace) x ON l.id = x.id")}
    namespaces = {}
    for ns in sorted(set(entries) | set(totals)):
        h, m, n = totals.get(ns, (0, 0, 0))
        at, lh, lm = last.get(ns, (None, 0, 0))
        namespaces[ns] = {"entries": entries.get(ns, 0), "lookups": n, "hits": h or 0, "misses": m or 0,
                          "last_lookup": {"at": at, "hits": lh, "misses": lm}}
    size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
               if p.exists())
    return {"path": str(self.path), "file_size": size, "namespaces": namespaces,
            "process": {"hits": self.hits, "misses": self.misses}}

def verify(self: AnnotationCache) -> list[str]:
    """Problems found: sqlite integrity, keys that do not match their row, undecodable values."""
    problems: list[str] = []
    with self._lock:
        conn = self._connect()
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            problems.extend(f"sqlite integrity: {msg}" for msg in integrity)
        for key, ns, norm, h, value in conn.execute(
                "SELECT key, namespace, normaliser, text_hash, value FROM annotations"):
            if cache_key(ns, norm, h) != key:
                problems.append(f"row {key[:16]}…: key does not match sha256(namespace ‖ normaliser ‖ text hash) "
                                f"(namespace {ns!r})")
            try:
                json.loads(value)
            except ValueError as exc:
                problems.append(f"row {key[:16]}… (namespace {ns!r}): undecodable value ({exc})")
    return problems
