"""Content-addressed store of model annotations (CheXbert labels, RadGraph graphs), in sqlite.

Why: the expensive part of clinical metrics is running a model over report texts, and the
same texts (references, frequent generated reports) recur across runs, systems and
bootstrap loops. A value is stored once under

    key = sha256(namespace ‖ normaliser id ‖ sha256(normalised text))

where ``namespace`` is the scorer's annotation fingerprint (implementation version,
checkpoint sha256, annotation-affecting parameters). Values are immutable: a key is never
rewritten (INSERT OR IGNORE), so a cache can only be wrong if a namespace is wrong. Report
text itself is never stored, only its hash.

Concurrency: WAL journal, a busy timeout and retries on "database is locked", writes in
``BEGIN IMMEDIATE`` transactions; each process opens its own connection (re-opened after a
fork). Two processes writing at once do not corrupt the file.

stdlib only (plus platformdirs), so ``bench`` stays light.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rrg_bench.cache.keys import cache_key, encode_value
from rrg_bench.errors import BenchError

SCHEMA_VERSION = 1
DB_NAME = "annotations.sqlite"
ENV_DIR = "BENCH_CACHE_DIR"
_BUSY_TIMEOUT_MS = 30_000
_RETRIES = 8

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS annotations (key TEXT PRIMARY KEY, namespace TEXT NOT NULL, "
    "normaliser TEXT NOT NULL, text_hash TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS annotations_namespace ON annotations(namespace)",
    # one row per lookup, so `bench cache stats` can show that a second scoring annotated nothing
    "CREATE TABLE IF NOT EXISTS lookups (id INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, "
    "at REAL NOT NULL, pid INTEGER NOT NULL, hits INTEGER NOT NULL, misses INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS lookups_namespace ON lookups(namespace)",
)



def default_path() -> Path:
    """``$BENCH_CACHE_DIR/annotations.sqlite`` or ``<user cache dir>/annotations.sqlite``."""
    from rrg_bench.paths import cache_root

    return cache_root() / DB_NAME


class CacheError(BenchError):
    """The cache file cannot be opened or an import file is malformed."""


class AnnotationCache:
    """The annotation store. ``path`` may be a file, a directory, or None (default location).

    Nothing is opened until the first lookup, so a run whose scorers need no annotations never
    touches (or trips over) the cache file. ``create=False`` is for inspection commands: a path
    with no cache is then an error instead of a new empty cache.
    """

    def __init__(self, path: Path | None = None, *, create: bool = True) -> None:
        self._given = path
        self._create = create
        self.hits = 0  # unique texts found, this process
        self.misses = 0  # unique texts not found, this process
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.RLock()
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            path = Path(self._given).expanduser() if self._given is not None else default_path()
            self._path = path / DB_NAME if path.is_dir() else path
        return self._path

    # -- connection --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # after a fork the parent's connection must not be used (nor closed) by the child
        self._conn = None
        conn: sqlite3.Connection | None = None
        if not self._create and not self.path.is_file():
            raise CacheError(f"no annotation cache at {self.path} (check --cache / {ENV_DIR})")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
            conn.execute("PRAGMA synchronous = NORMAL")
            self._retry(lambda: self._init_schema(conn))
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise CacheError(f"annotation cache {self.path}: cannot open ({exc}); move the file away "
                             f"or point {ENV_DIR} elsewhere (annotations are recomputed on demand)") from None
        except OSError as exc:
            raise CacheError(f"annotation cache {self.path}: cannot create ({exc}); "
                             f"set {ENV_DIR} to a writable directory") from None
        self._conn, self._pid = conn, os.getpid()
        return conn

    @staticmethod
    def _init_schema(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta(name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {row[0]}, this harness reads {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _retry(fn: Callable[[], Any]) -> Any:
        """Run ``fn``, retrying with jittered backoff while another process holds the lock."""
        for attempt in range(_RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                msg = str(exc).lower()
                if ("locked" not in msg and "busy" not in msg) or attempt == _RETRIES - 1:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _write_retrying(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        def attempt() -> Any:
            with self._write() as conn:
                return fn(conn)

        with self._lock:
            return self._retry(attempt)

    # -- public API ----------------------------------------------------------------------

    def get_many(self, namespace: str, text_hashes: Sequence[str], *, normaliser: str = "none") -> dict[str, Any]:
        """Stored values for the given text hashes (missing ones are absent from the dict).

        Records one lookup (unique hashes found / not found) for ``stats``.
        """
        unique = list(dict.fromkeys(text_hashes))
        keys = {cache_key(namespace, normaliser, h): h for h in unique}
        found: dict[str, Any] = {}
        with self._lock:
            conn = self._connect()

            def select(chunk: list[str]) -> list[Any]:
                marks = ",".join("?" * len(chunk))
                return conn.execute(f"SELECT key, value FROM annotations WHERE key IN ({marks})", chunk).fetchall()

            key_list = list(keys)
            for start in range(0, len(key_list), 500):
                rows = self._retry(functools.partial(select, key_list[start:start + 500]))
                for key, value in rows:
                    found[keys[key]] = json.loads(value)
        hits, misses = len(found), len(unique) - len(found)
        self.hits += hits
        self.misses += misses
        if unique:
            self._write_retrying(lambda c: c.execute(
                "INSERT INTO lookups(namespace, at, pid, hits, misses) VALUES (?, ?, ?, ?, ?)",
                (namespace, time.time(), os.getpid(), hits, misses)))
        return found

    def put_many(self, namespace: str, items: dict[str, Any], *, normaliser: str = "none") -> None:
        """Store ``{text_hash: value}``; existing keys keep their value (values are immutable)."""
        now = time.time()
        rows = [(cache_key(namespace, normaliser, h), namespace, normaliser, h, encode_value(v, namespace), now)
                for h, v in items.items()]
        if not rows:
            return
        self._write_retrying(lambda c: c.executemany(
            "INSERT OR IGNORE INTO annotations(key, namespace, normaliser, text_hash, value, created) "
            "VALUES (?, ?, ?, ?, ?, ?)", rows))

    def clear(self, namespace: str | None = None) -> int:
        """Delete the annotations (and lookup counters) of one namespace or all; returns rows deleted."""
        def delete(conn: sqlite3.Connection) -> int:
            if namespace is None:
                n = conn.execute("DELETE FROM annotations").rowcount
                conn.execute("DELETE FROM lookups")
            else:
                n = conn.execute("DELETE FROM annotations WHERE namespace = ?", (namespace,)).rowcount
                conn.execute("DELETE FROM lookups WHERE namespace = ?", (namespace,))
            return n

        return int(self._write_retrying(delete))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def export(self, path: Path | str, namespace: str | None = None) -> int:
        """Write rows as JSON Lines (gzip if the name ends in .gz); returns the row count."""
        from rrg_bench.cache.transfer import export_rows

        return export_rows(self, path, namespace)

    def import_(self, path: Path | str) -> int:
        """Add the rows of an ``export`` file; returns how many were new. Keys are re-checked."""
        from rrg_bench.cache.transfer import import_rows

        return import_rows(self, path)

    def stats(self) -> dict[str, Any]:
        """Entries per namespace, lifetime and last-lookup hit/miss counts, file size, this process."""
        from rrg_bench.cache.inspect import stats

        return stats(self)

    def verify(self) -> list[str]:
        """Problems found: sqlite integrity, keys that do not match their row, undecodable values."""
        from rrg_bench.cache.inspect import verify

        return verify(self)

    def __enter__(self) -> AnnotationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


