"""One lock discipline for every directory a command writes (run directories, score outputs).

A second command on the same directory is refused at once with the holder's PID — never left
to race on temp files, and never allowed to delete (``--fresh``) what another process is writing.
The lock is a ``filelock`` (flock), so a killed holder releases it with its process.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from rrg_bench.errors import BenchError, RunLocked


class DirLock:
    """Exclusive, non-blocking lock on ``directory`` (one per process rank)."""

    def __init__(self, directory: Path, rank: int = 0) -> None:
        from filelock import FileLock

        self.directory = Path(directory)
        suffix = "" if rank == 0 else f".rank{rank}"
        self.path = self.directory / f".lock{suffix}"
        self.owner = self.directory / f".lock{suffix}.owner"
        self._lock = FileLock(str(self.path))

    def __enter__(self) -> DirLock:
        from filelock import Timeout

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = self.owner.read_text().strip() if self.owner.exists() else "another process"
            raise RunLocked(
                f"{self.directory}: in use by {holder}; wait for it to finish or stop it "
                "(two commands never write one run directory at once)"
            ) from None
        except OSError as exc:
            raise BenchError(f"{self.directory}: cannot write here ({exc.strerror or exc}); "
                             "choose another directory (--runs-dir / --output)") from None
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:6]))
        try:
            self.owner.write_text(f"pid {os.getpid()} on {socket.gethostname()} ({command})\n")
        except OSError:
            pass  # the lock holds; only the holder's description is missing
        return self

    def __exit__(self, *exc: object) -> None:
        self.owner.unlink(missing_ok=True)
        self._lock.release()
