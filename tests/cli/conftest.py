"""Fixtures for command-line tests: a throw-away plugin distribution installed for real,
and a helper that runs ``bench`` in a subprocess with it on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install tests/fixtures/plugin_dist into a private target directory."""
    target = tmp_path_factory.mktemp("plugin_site")
    src = REPO / "tests" / "fixtures" / "plugin_dist"
    build = tmp_path_factory.mktemp("plugin_build")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(src)],
        capture_output=True, text=True, cwd=build,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(target.glob("rrg_bench_testplugin-*.dist-info"))
    return target


def bench_env(plugin_site: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BENCH_DATA_ROOT", None)
    if plugin_site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_site), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run_bench(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=env or bench_env(), cwd=cwd, timeout=timeout)
