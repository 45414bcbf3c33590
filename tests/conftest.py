"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Tests never download: any Hugging Face Hub access (a stray hub id given to a loader) fails at
# once instead of waiting on a network this machine does not have. Tests build tiny models and local
# files; subprocesses inherit the setting through os.environ.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _shared_meteor_index_dir() -> str:
    """METEOR's paraphrase index (a ~20 s build, derived from pycocoevalcap's table and keyed by its
    sha256) is shared by every test, including those that point BENCH_CACHE_DIR at a temp dir."""
    from rrg_bench.metrics.nlg.paraphrases import default_index_dir

    shared = default_index_dir()
    if shared is None:  # no home directory: one temp dir for the session
        import tempfile

        return tempfile.mkdtemp(prefix="rrg-bench-meteor-index-")
    return str(shared)


os.environ.setdefault("BENCH_METEOR_INDEX_DIR", _shared_meteor_index_dir())

# Test helpers import as ``helpers`` (tests/helpers). ``tests.helpers`` cannot work: a
# dependency installs a top-level ``tests`` package into site-packages, which shadows this
# folder. pytest's default import mode already puts tests/ on sys.path; this makes it
# independent of the import mode.
_TESTS = str(Path(__file__).resolve().parent)
_REPO = Path(__file__).resolve().parents[1]
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from helpers import iu_source_dir  # noqa: E402


@pytest.fixture(scope="session")
def iu_source() -> Path:
    """The shared IU X-Ray text files (annotation.json, Open-i CSVs, ReXrank JSON), read-only."""
    path = iu_source_dir()
    if not (path / "annotation.json").is_file():
        pytest.skip(f"IU X-Ray text not found at {path} (set BENCH_SHARED to the folder holding data/iu_xray)")
    return path


@pytest.fixture(scope="session", autouse=True)
def toy_metric_registered():
    """The leaderboard tests' ``toy`` scorer, registered in-process like a plugin's scorer."""
    from helpers.leaderboard_records import ToyScorer
    from rrg_bench.registry import registry

    metrics = registry("metrics")
    if "toy" not in metrics:
        metrics.register("toy", ToyScorer, card="helpers:toy_card.md", summary="test double")
    yield


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install tests/fixtures/plugin_dist into a private target directory."""
    target = tmp_path_factory.mktemp("plugin_site")
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    build = tmp_path_factory.mktemp("plugin_build")
    src = build / "plugin_dist"
    shutil.copytree(_REPO / "tests" / "fixtures" / "plugin_dist", src)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(src)],
        capture_output=True, text=True, cwd=build,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(target.glob("rrg_bench_testplugin-*.dist-info"))
    return target
