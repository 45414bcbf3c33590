"""Run ``bench`` in a subprocess, as a user would, with an optional plugin site on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def bench_env(plugin_site: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BENCH_DATA_ROOT", None)
    env["COLUMNS"] = "250"  # rich tables would otherwise wrap names at the default 80 columns
    if plugin_site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_site), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run_bench(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rrg_bench", *args], capture_output=True, text=True,
                          env=env or bench_env(), cwd=cwd, timeout=timeout)
