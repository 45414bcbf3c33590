"""Run a small Java checker against METEOR's jar and our compiled METEOR server, in one JVM.

Why: some claims compare the server's code with the jar's own at the level of single methods
(the normaliser, the words the aligner sees); a checker class calls both and prints what differs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run_jar_checker(java: str, classes: Path, class_name: str, source: str, workdir: Path, *args: object,
                    timeout_s: float = 500) -> str:
    """Compile ``source`` (class ``class_name``) with the server's own compiler branch against the jar and
    the server classes, run it with ``args``, and return what it printed (UTF-8)."""
    from rrg_bench.metrics.nlg import meteor_server
    from rrg_bench.metrics.nlg.java import METEOR_JAR

    classpath = os.pathsep.join((str(METEOR_JAR), str(classes)))
    path = workdir / f"{class_name}.java"
    path.write_text(source, encoding="utf-8")
    subprocess.run([java, "-cp", classpath, meteor_server.SERVER_CLASS, "--compile", str(path), str(workdir)],
                   check=True, timeout=300)
    run = [java, "-cp", os.pathsep.join((classpath, str(workdir))), class_name, *map(str, args)]
    return subprocess.run(run, check=True, capture_output=True, timeout=timeout_s).stdout.decode("utf-8")
