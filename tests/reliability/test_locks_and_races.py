"""Class 2: one lock discipline for run and score directories; concurrent commands are refused
with the holder's PID or finish correctly, never half-written."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import FAST, assert_unchanged, load, record_paths, refused, snapshot

from helpers.bench_cli import bench_env, run_bench


def test_score_into_another_runs_directory_is_refused(complete_run, demo_predictions):
    run_dir = record_paths(complete_run)[0].parents[2]
    before = snapshot(complete_run)
    other = demo_predictions.with_name("other.jsonl")
    other.write_text(demo_predictions.read_text().replace("no acute findings.", "cardiomegaly."))
    proc = run_bench(["score", "-p", str(other), "-o", str(run_dir), *FAST])
    refused(proc, str(run_dir))
    assert_unchanged(before, complete_run)



def test_fresh_while_the_same_run_is_in_progress_is_refused_with_the_pid(tmp_path, plugin_site):
    runs = tmp_path / "runs"
    env = bench_env(plugin_site)
    args = ["run", "--model", "slow_echo", "--model-arg", "delay=0.7", "--batch-size", "2", "--runs-dir", str(runs),
            *FAST]
    first = subprocess.Popen([sys.executable, "-m", "rrg_bench", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.rglob("predictions.jsonl")):
        time.sleep(0.2)
    second = run_bench([*args, "--fresh"], env=env)
    line = refused(second, "in use by pid", str(first.pid))
    assert "--fresh" not in line or "in use" in line
    out, errs = first.communicate(timeout=300)
    assert first.returncode == 0, errs
    (record,) = record_paths(runs)
    assert load(record)["status"]["state"] == "complete"


def test_concurrent_scoring_into_one_runs_dir_and_cache(tmp_path, demo_predictions, plugin_site):
    """4 processes score different files, 2 race on the same file: all complete or cleanly refused.
    The plugin's ``length_ratio`` writes its annotations to the shared cache, as model metrics do."""
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    files = []
    for i in range(4):
        f = tmp_path / f"p{i}.jsonl"
        f.write_text(demo_predictions.read_text().replace("no acute findings.", f"finding number {i}."))
        files.append(f)
    env = bench_env(plugin_site, BENCH_CACHE_DIR=str(cache))
    fast = ["--metrics", "length_ratio,chexpert_rules", "--n-boot", "20", "--no-progress"]
    cmds = [["score", "-p", str(f), "--runs-dir", str(runs), "--name", f"sys{i}", *fast] for i, f in enumerate(files)]
    cmds += [["score", "-p", str(files[0]), "--runs-dir", str(runs), "--name", "same", *fast]] * 2
    procs = [subprocess.Popen([sys.executable, "-m", "rrg_bench", *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for c in cmds]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    for p, _out, errs in results[:4]:
        assert p.returncode == 0, errs
    racing = results[4:]
    assert any(p.returncode == 0 for p, _, _ in racing)
    for p, _out, errs in racing:
        if p.returncode != 0:
            assert "in use by pid" in errs and "Traceback" not in errs
    records = [load(r) for r in record_paths(runs)]
    assert len(records) == 5 and all(r["status"]["state"] == "complete" for r in records)
    by_name = {r["generator"]["name"]: r for r in records}
    assert by_name["same"]["metrics"] == by_name["sys0"]["metrics"]  # same predictions, same numbers
    assert sum(r["cache"]["length_ratio"]["misses"] for r in records) >= 1
    verify = run_bench(["cache", "verify", "--cache", str(cache)], env=env)
    assert verify.returncode == 0 and "consistent" in verify.stdout, verify.stderr
    assert not list(runs.rglob("*.tmp"))
