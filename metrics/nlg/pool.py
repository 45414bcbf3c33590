"""The process's live JVMs (METEOR jars, the PTB tokeniser server): started on first use, reused, killed at exit.

Why a pool: a JVM start costs CPU (0.3 s for our METEOR server with a fitted table, 5-12 s for the
plain jar with its full paraphrase table, ~0.3 s for the PTB tokeniser) and a cold JIT, so it
should start once per process, not once per ``score`` call, and serve every scorer and every
Python API call after it. Reuse must not cost safety: a JVM goes back to the pool only if it is alive and its
last exchange completed (:attr:`~.java.JavaProcess.clean`); a crashed, killed or interrupted one is
closed and a fresh one started next time. Idle JVMs are closed at interpreter exit (and killed by
their own finalizers if that is skipped); a forked child starts with an empty pool and never
touches its parent's JVMs. :func:`shutdown` frees them earlier.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from typing import TypeVar

from rrg_bench.metrics.nlg.java import JavaProcess

P = TypeVar("P", bound=JavaProcess)


class JavaPool:
    """Idle JVMs by key (program and runtime); :meth:`lease` hands them out, starting what is missing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Hashable, list[JavaProcess]] = {}
        self._started: weakref.WeakSet[JavaProcess] = weakref.WeakSet()

    @contextlib.contextmanager
    def lease(self, key: Hashable, count: int, start: Callable[[], P], *, timeout_s: float) -> Iterator[list[P]]:
        """``count`` live JVMs for the block (idle ones first, the rest started now, not yet ready).

        Each answers within ``timeout_s`` per exchange. On leaving the block a JVM returns to the
        pool only if alive and clean; otherwise it is closed (this also ends an exchange still
        running in another thread when the block is left by an error).
        """
        procs: list[P] = self._take(key, count)  # type: ignore[assignment]
        try:
            while len(procs) < count:
                proc = start()
                with self._lock:
                    self._started.add(proc)
                procs.append(proc)
            for proc in procs:
                proc.timeout_s = timeout_s
            yield procs
        finally:
            self._give_back(key, procs)

    def idle(self, key: Hashable) -> int:
        """JVMs of ``key`` ready to serve (for choosing a worker count)."""
        with self._lock:
            return sum(1 for p in self._idle.get(key, []) if p.alive)

    def _take(self, key: Hashable, count: int) -> list[JavaProcess]:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            usable = [p for p in idle if p.alive and p.clean]
            stale = [p for p in idle if p not in usable]
            taken, self._idle[key] = usable[:count], usable[count:]
        for proc in stale:
            proc.close()
        return taken

    def _give_back(self, key: Hashable, procs: list[P]) -> None:
        for proc in procs:
            if proc.alive and proc.clean:
                with self._lock:
                    self._idle.setdefault(key, []).append(proc)
            else:
                proc.close()

    def close(self) -> None:
        """Close every idle JVM (leased ones are closed by their lease)."""
        with self._lock:
            idle = [p for procs in self._idle.values() for p in procs]
            self._idle = {}
        for proc in idle:
            proc.close()

    def forget_after_fork(self) -> None:
        """In a forked child: the JVMs are the parent's; start from an empty pool, never touch them."""
        self._lock = threading.Lock()
        self._idle = {}
        for proc in list(self._started):
            proc.disown()
        self._started = weakref.WeakSet()


POOL = JavaPool()
atexit.register(POOL.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=POOL.forget_after_fork)


def shutdown() -> None:
    """Close the process's idle JVMs now (they would otherwise live until the interpreter exits)."""
    POOL.close()
