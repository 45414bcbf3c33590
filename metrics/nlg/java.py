"""The Java side of the NLG metrics: the runtime, pycocoevalcap's bundled jars, and running them.

Why a module of its own: METEOR 1.5 and CoreNLP's PTB tokeniser are Java programs, and the
unsafe parts of pycocoevalcap's glue are all about how they are started — no timeout, a
missing ``java`` surfacing as an obscure ``FileNotFoundError``, line protocols that several
Unicode line breaks silently break. Everything that touches the JVM goes through here.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pycocoevalcap.tokenizer import ptbtokenizer as _ptb

from rrg_bench.environment import java_timeout
from rrg_bench.errors import ToolUnavailable

JAVA_INSTALL_HINT = (
    "install Java 17 (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) "
    "or put a `java` executable on PATH / set JAVA_HOME"
)


#: JVM options of our long-lived servers (METEOR, the PTB tokeniser) besides each program's own (the JVM ignores
#: one it does not know): C1 only (``-XX:TieredStopAtLevel=1``). Why: they run beside the Python scorers on the
#: same cores, and C2's compiler threads take a core from them. The METEOR server, whole NLG call (benchmarks/
#: README.md, "JIT level"): 590 studies 1.2 s instead of 1.6 s, 4,000 3.7 s instead of 5.8 s, 16,000 11.0 s
#: instead of 13.7 s. The PTB server ("JIT level", PTB): C2 compiled CoreNLP's lexer in the background *after* a
#: call, up to 0.5 s of CPU in the middle of the next one; with C1 tokenising is faster at every size measured
#: (590: 0.3 -> 0.2 s, 16,000: 1.2 -> 0.8 s). A JIT tier cannot change a value (Java 17 floating point is strict,
#: JEP 306); the parity tests compare each server with upstream's command, run with the JVM's defaults.
SERVER_JVM_OPTIONS = ("-XX:+IgnoreUnrecognizedVMOptions", "-XX:TieredStopAtLevel=1")


class JavaUnavailable(ToolUnavailable):
    """No Java runtime: METEOR 1.5 and the PTB tokeniser are Java programs."""


class NLGSubprocessError(ToolUnavailable):
    """The METEOR or PTB-tokeniser subprocess failed, desynchronised or timed out."""


class NLGTimeout(NLGSubprocessError):
    """A Java program did not answer in time and was killed (retrying elsewhere would wait again)."""


def java_executable() -> str | None:
    """``$JAVA_HOME/bin/java`` if present, else ``java`` on PATH, else None."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def require_java() -> str:
    java = java_executable()
    if java is None:
        raise JavaUnavailable(
            "metric 'nlg' needs Java 17 for METEOR 1.5 and the PTB tokeniser, but no `java` "
            f"was found; {JAVA_INSTALL_HINT}."
        )
    return java


@functools.lru_cache(maxsize=8)
def java_version(java: str) -> str | None:
    """The runtime's version string (e.g. ``17.0.15``), recorded in every results record."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=min(60.0, java_timeout()))
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------
# pycocoevalcap's bundled jars
# ---------------------------------------------------------------------------------------

PYCOCOEVALCAP_DIR = Path(_ptb.__file__).resolve().parent.parent
METEOR_JAR = PYCOCOEVALCAP_DIR / "meteor" / "meteor-1.5.jar"
PTB_JAR = PYCOCOEVALCAP_DIR / "tokenizer" / _ptb.STANFORD_CORENLP_3_4_1_JAR
#: the tokens ``PTBTokenizer.tokenize`` drops after CoreNLP has run
PTB_PUNCTUATIONS: frozenset[str] = frozenset(_ptb.PUNCTUATIONS)


def pycocoevalcap_version() -> str:
    return importlib.metadata.version("pycocoevalcap")


# ---------------------------------------------------------------------------------------
# Line protocols and subprocesses
# ---------------------------------------------------------------------------------------

#: every character Python's str.splitlines() breaks on; CoreNLP and the METEOR jar split
#: lines on several of them, which would silently shift texts onto other studies' lines
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def run_to_completion(cmd: Sequence[str], *, timeout_s: float, what: str, workload: str) -> bytes:
    """A Java program's stdout, or an error that names it (``what``) and its input (``workload``).

    stdin is closed so a program expecting input ends instead of waiting, and the timeout kills
    a hung JVM instead of stalling the run (pycocoevalcap's glue has neither).
    """
    try:
        done = subprocess.run(list(cmd), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise NLGTimeout(
            f"{what} (Java) did not answer within {timeout_s:g} s for {workload} and was killed; "
            "raise BENCH_NLG_TIMEOUT if the input is huge."
        ) from None
    if done.returncode != 0:
        raise NLGSubprocessError(
            f"{what} exited with code {done.returncode}: {done.stderr.decode('utf-8', 'replace').strip()[-600:]}"
        )
    return done.stdout


def stderr_tail(fh: Any, limit: int = 600) -> str:
    """Last lines a subprocess wrote to its (file-backed) stderr, for error messages. A Java stack
    trace's frame lines (tab, ``at ...``; tab, ``... N more``) are left out, so that the exception and
    its causes (``Exception in thread "main" java.lang.OutOfMemoryError: Java heap space``) fit."""
    try:
        fh.flush()
        fh.seek(0)
        text = fh.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""
    lines = [line for line in text.splitlines() if not _JAVA_FRAME.match(line)]
    return "\n".join(lines)[-limit:]


_JAVA_FRAME = re.compile(r"\t(at |\.\.\. \d+ more$)")


# ---------------------------------------------------------------------------------------
# Long-lived Java programs
# ---------------------------------------------------------------------------------------


def _kill(proc: subprocess.Popen, owner: int) -> None:
    """Kill ``proc`` unless called in a forked child: the JVM belongs to the process that started it."""
    if os.getpid() == owner and proc.poll() is None:
        proc.kill()
        proc.wait()


class JavaProcess:
    """A Java program kept running and spoken to over its pipes, that is never left behind.

    Why: a JVM start costs from 0.15 s (CoreNLP) to 5-12 s (the plain METEOR jar's paraphrase table), so a
    process is worth reusing, and a reused process must be as safe as a one-shot one. stderr
    goes to a temp file (a pipe nobody reads fills up and blocks the JVM); every exchange runs
    under a watchdog that kills the JVM at its deadline; the JVM is killed on ``close()``, on
    leaving a ``with`` block, when the object is collected and at interpreter exit, but never
    by a forked child (its copy of this object does not own the JVM). ``clean`` is False from
    the start of an exchange until it completed, so a pool can tell a JVM that may hold half
    an answer (and must be replaced) from one that can serve the next call.
    """

    #: names the program in error messages
    what: ClassVar[str] = "the Java program"

    def __init__(self, cmd: Sequence[str], *, cwd: Path | None, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        #: it has answered once: its start-up is over
        self.answered = False
        self.clean = True
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(list(cmd), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr)
        except OSError as exc:
            self._stderr.close()
            raise NLGSubprocessError(f"could not start {self.what} ({cmd[0]}): {exc}") from None
        self._owner = os.getpid()
        self._finalizer = weakref.finalize(self, _kill, self._proc, self._owner)
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the JVM: end of input first (an idle one exits within ~0.1 s), then kill."""
        if os.getpid() != self._owner:
            return
        try:
            if self._proc.stdin and not self._proc.stdin.closed:
                self._proc.stdin.close()
            self._proc.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        finally:
            self._finalizer()  # kills if still running
            if self._proc.stdout:
                self._proc.stdout.close()
            self._stderr.close()

    def disown(self) -> None:
        """In a forked child: forget the parent's JVM without touching it."""
        self._finalizer.detach()

    @contextlib.contextmanager
    def exchange(self, deadline: float | None = None) -> Iterator[threading.Event]:
        """One request and its reply, by one thread at a time, killed at ``deadline`` (monotonic
        seconds; default ``timeout_s`` from now). Yields the event the watchdog sets when it fires."""
        with self._lock:
            self.clean = False
            timed_out = threading.Event()

            def on_timeout() -> None:
                timed_out.set()
                self._proc.kill()

            remaining = (deadline - time.monotonic()) if deadline is not None else self.timeout_s
            watchdog = threading.Timer(max(remaining, 0.0), on_timeout)
            watchdog.daemon = True
            watchdog.start()
            try:
                yield timed_out
                self.clean = self.alive
            finally:
                watchdog.cancel()

    def write(self, data: bytes) -> None:
        """Send bytes; a dead JVM is reported by the next read, with its stderr."""
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def read_line(self, timed_out: threading.Event) -> str:
        assert self._proc.stdout is not None
        raw = self._proc.stdout.readline()
        if not raw:
            raise self._failure(timed_out)
        self.answered = True
        return raw.decode("utf-8", "replace").strip()

    def read_exactly(self, size: int, timed_out: threading.Event) -> bytes:
        assert self._proc.stdout is not None
        chunks, missing = [], size
        while missing:
            chunk = self._proc.stdout.read(missing)
            if not chunk:
                raise self._failure(timed_out)
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def _failure(self, timed_out: threading.Event) -> NLGSubprocessError:
        self._proc.wait()
        if timed_out.is_set():
            return NLGTimeout(
                f"{self.what} (Java) did not answer within {self.timeout_s:g} s and was killed; "
                "raise BENCH_NLG_TIMEOUT for very large inputs."
            )
        return NLGSubprocessError(
            f"{self.what} (Java) exited unexpectedly (code {self._proc.returncode}){self.exit_hint}. "
            f"stderr: {stderr_tail(self._stderr) or '(empty)'}"
        )

    #: appended to the message of an unexpected exit
    exit_hint: ClassVar[str] = ""
