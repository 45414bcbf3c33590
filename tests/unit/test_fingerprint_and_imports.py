"""Hashes are stable across machines; start-up stays light; generic package names are ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rrg_bench.api.generator import study_seed
from rrg_bench.errors import UsageError
from rrg_bench.hashing import canonical_json, sha256_json
from rrg_bench.specs import parse_spec

REPO = Path(__file__).resolve().parents[2]


def test_canonical_json_is_order_free_and_pinned():
    a = {"b": [1, 2.5, "é"], "a": {"y": None, "x": True}}
    b = {"a": {"x": True, "y": None}, "b": [1, 2.5, "é"]}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"x":true,"y":null},"b":[1,2.5,"é"]}'
    # golden values: changing the hashing scheme must be a deliberate, visible change
    assert sha256_json(a) == sha256_json(b) == "1ec5114d36593eba3ac85d60b13d0046b42734255834ce2b5366c78cd108ea57"
    assert sha256_json({"k": 1}) == "a0da1fce57d0e4f9f0ae4e4cbe040d34dcc046255c6c8d18e97f55aaed0655f0"


def test_nan_is_refused():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_study_seed_depends_on_run_seed_and_id_only():
    assert study_seed(0, "a") == study_seed(0, "a")
    assert len({study_seed(0, "a"), study_seed(1, "a"), study_seed(0, "b")}) == 3
    assert study_seed(0, "CXR1_IM-0001") == 4485968132095352026  # golden: resumes depend on it


def test_parse_spec():
    assert parse_spec("nlg") == ("nlg", {})
    assert parse_spec("nlg[tok=r2gen, x = 1]") == ("nlg", {"tok": "r2gen", "x": "1"})
    with pytest.raises(UsageError):
        parse_spec("nlg[tok]")


def test_cli_start_up_imports_no_heavy_library():
    code = ("import sys, rrg_bench.cli, rrg_bench.run, rrg_bench.registry; "
            "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'pandas') if m in sys.modules]; "
            "print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
    proc = subprocess.run([sys.executable, "-m", "rrg_bench", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Generate reports for a split" in proc.stdout


def test_a_users_own_generic_modules_do_not_shadow_ours(tmp_path):
    """A script beside its own metrics.py, bench.py and leaderboard.py still gets rrg-bench's code."""
    for name in ("metrics", "bench", "leaderboard", "baselines"):
        (tmp_path / f"{name}.py").write_text("MINE = True\n")
    script = tmp_path / "score.py"
    script.write_text(
        "import metrics, bench, leaderboard\n"
        "assert metrics.MINE and bench.MINE and leaderboard.MINE\n"
        "import rrg_bench.metrics.nlg, rrg_bench.leaderboard.boards, rrg_bench.registry\n"
        "from rrg_bench.registry import registry\n"
        "assert registry('metrics').get('nlg').__module__.startswith('rrg_bench.metrics')\n"
        "print(rrg_bench.metrics.nlg.__file__)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not Path(proc.stdout.strip()).resolve().is_relative_to(tmp_path)


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(tmp_path):
    """``pip install .`` must put exactly ``rrg_bench`` (and its dist-info) into site-packages."""
    import shutil
    import zipfile

    # build from a copy of the tracked files: setuptools writes build/ and *.egg-info beside the sources
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    src = tmp_path / "src"
    for rel in filter(None, listed.decode().split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("rrg_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"rrg_bench"}, sorted(tops)
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["rrg_bench"]
    # benchmarks/ and tests/ are not installed; manifests and cards are
    assert not any(n.startswith(("benchmarks/", "tests/", "rrg_bench/benchmarks")) for n in names)
    assert "rrg_bench/data_manifests/iu_xray/r2gen/manifest.yaml" in names
