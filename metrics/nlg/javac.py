"""Our small Java servers, compiled once per machine with the runtime's own compiler into the user cache.

Why: a server class (:mod:`.ptb`'s tokeniser, :mod:`.meteor_server`'s METEOR loop) must run
against pycocoevalcap's jars, and we ship it as source so that nothing binary enters the
repository. Java 11+ can launch a single source file; the class's ``--compile SRC DIR`` branch
then compiles itself with ``javax.tools`` into a directory keyed by the source, the runtime
and the jar, renamed into place atomically (a racing process may win; both results are equal).
A runtime without a compiler (a JRE without ``jdk.compiler``), a read-only cache or a failed
start gives None, and the caller runs the jar's own command instead.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

from rrg_bench.errors import UsageError
from rrg_bench.metrics.nlg.java import NLGSubprocessError, NLGTimeout, java_version, run_to_completion

_compiled: dict[tuple[str, str], Path | None] = {}
_lock = threading.Lock()


def server_classes(class_name: str, source: str, jar: Path, java: str, *, timeout_s: float) -> Path | None:
    """The directory holding ``class_name`` compiled for this runtime (compiled on first use), or None
    when this runtime cannot compile it. Remembered for the process."""
    with _lock:
        key = (class_name, java)
        if key not in _compiled:
            _compiled[key] = _compile(class_name, source, jar, java, timeout_s)
        return _compiled[key]


def forget(class_name: str, java: str) -> None:
    """This runtime's server failed to start: callers use the jar's command for the rest of the process."""
    with _lock:
        _compiled[(class_name, java)] = None


def _compile(class_name: str, source: str, jar: Path, java: str, timeout_s: float) -> Path | None:
    from rrg_bench.hashing import sha256_file_memo, sha256_text

    key = sha256_text("\n".join((source, java, java_version(java) or "?", sha256_file_memo(jar))))[:16]
    try:
        from rrg_bench.paths import cache_root

        root = cache_root() / "java"
    except UsageError:  # no home directory: a private directory for this process
        root = Path(tempfile.mkdtemp(prefix="rrg-bench-java-"))
        atexit.register(shutil.rmtree, root, True)
    target = root / f"{class_name}-{key}"
    if (target / f"{class_name}.class").is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    except OSError:
        return None
    try:
        path = work / f"{class_name}.java"
        path.write_text(source, encoding="utf-8")
        run_to_completion([java, "-cp", str(jar), str(path), "--compile", str(path), str(work)],
                          timeout_s=timeout_s, what=f"compiling {class_name}", workload=f"{class_name}.java")
        if not (work / f"{class_name}.class").is_file():
            return None
        try:
            work.rename(target)  # atomic; another process may have won the race
        except OSError:
            pass
        return target if (target / f"{class_name}.class").is_file() else None
    except NLGTimeout:
        raise NLGTimeout(
            f"Java ({java}) did not answer within {timeout_s:g} s while compiling {class_name} "
            f"and was killed; check that `{java} -version` works (or raise BENCH_NLG_TIMEOUT on a very slow machine)."
        ) from None
    except NLGSubprocessError:
        return None  # e.g. a runtime without the jdk.compiler module
    finally:
        shutil.rmtree(work, ignore_errors=True)
