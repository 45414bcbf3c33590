"""Class 3: ``--name`` values map one-to-one to safe directory names, or are refused."""

from __future__ import annotations

from conftest import FAST, accepted, load, record_paths, refused

from helpers.bench_cli import run_bench


def test_names_map_one_to_one_and_never_escape(tmp_path, demo_predictions):
    runs = tmp_path / "runs"
    names = ["a/b/c", "a_b_c", "a b c", "../../escape", "org/model"]
    for name in names:
        accepted(run_bench(["score", "-p", str(demo_predictions), "--runs-dir", str(runs), "--name", name, *FAST]))
    records = record_paths(runs)
    assert len(records) == len(names)  # no two names share a directory
    assert sorted(load(r)["generator"]["name"] for r in records) == sorted(names)  # display names kept
    assert all(r.resolve().is_relative_to(runs.resolve()) for r in records)
    assert not (tmp_path / "escape").exists()


def test_unusable_names_are_refused(tmp_path, demo_predictions):
    runs = tmp_path / "runs"
    for name, needle in [("", "must not be empty"), ("a\tb\nc", "control characters"), ("x" * 300, "300 characters")]:
        proc = run_bench(["score", "-p", str(demo_predictions), "--runs-dir", str(runs), "--name", name, *FAST])
        refused(proc, "--name", needle, code=2)
    for name in (".", ".."):
        accepted(run_bench(["score", "-p", str(demo_predictions), "--runs-dir", str(runs), "--name", name, *FAST]))
    dirs = {r.parents[3].name for r in record_paths(runs)}  # runs/demo/test/<name>/<file sha>/records/<fp>
    assert len(dirs) == 2 and not dirs & {".", ".."}
