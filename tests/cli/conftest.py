"""Fixtures for command-line tests: a throw-away plugin distribution installed for real."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install tests/fixtures/plugin_dist into a private target directory."""
    target = tmp_path_factory.mktemp("plugin_site")
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    build = tmp_path_factory.mktemp("plugin_build")
    src = build / "plugin_dist"
    shutil.copytree(REPO / "tests" / "fixtures" / "plugin_dist", src)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(src)],
        capture_output=True, text=True, cwd=build,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(target.glob("rrg_bench_testplugin-*.dist-info"))
    return target
