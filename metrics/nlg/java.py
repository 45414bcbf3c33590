"""The Java side of the NLG metrics: the runtime, pycocoevalcap's bundled jars, and running them.

Why a module of its own: METEOR 1.5 and CoreNLP's PTB tokeniser are Java programs, and the
unsafe parts of pycocoevalcap's glue are all about how they are started — no timeout, a
missing ``java`` surfacing as an obscure ``FileNotFoundError``, line protocols that several
Unicode line breaks silently break. Everything that touches the JVM goes through here.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pycocoevalcap.tokenizer import ptbtokenizer as _ptb

from rrg_bench.environment import java_timeout
from rrg_bench.errors import ToolUnavailable

JAVA_INSTALL_HINT = (
    "install Java 17 (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) "
    "or put a `java` executable on PATH / set JAVA_HOME"
)


class JavaUnavailable(ToolUnavailable):
    """No Java runtime: METEOR 1.5 and the PTB tokeniser are Java programs."""


class NLGSubprocessError(ToolUnavailable):
    """The METEOR or PTB-tokeniser subprocess failed, desynchronised or timed out."""


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
        raise NLGSubprocessError(
            f"{what} (Java) did not answer within {timeout_s:g} s for {workload} and was killed; "
            "raise BENCH_NLG_TIMEOUT if the input is huge."
        ) from None
    if done.returncode != 0:
        raise NLGSubprocessError(
            f"{what} exited with code {done.returncode}: {done.stderr.decode('utf-8', 'replace').strip()[-600:]}"
        )
    return done.stdout


def stderr_tail(fh: Any, limit: int = 600) -> str:
    """Last lines a subprocess wrote to its (file-backed) stderr, for error messages."""
    try:
        fh.flush()
        fh.seek(0)
        text = fh.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""
    return text[-limit:]
