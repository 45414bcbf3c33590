"""Tracebacks and hangs where one clear line belongs; odd but valid input scored, not refused."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from conftest import FAST, accepted, assert_unchanged, load, record_paths, refused, snapshot

from helpers.bench_cli import bench_env, run_bench


def test_lone_surrogate_names_the_line_and_leaves_no_temp_file(tmp_path, demo_predictions):
    lines = demo_predictions.read_text().splitlines()
    first = json.loads(lines[0])["study_id"]
    lines[0] = f'{{"study_id": "{first}", "report": "bad \\ud800 text"}}'
    demo_predictions.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    refused(run_bench(["score", "-p", str(demo_predictions), "-o", str(out), *FAST]), "preds.jsonl:1:", "surrogate")
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory no one can write into: mode 0500, and for root (who ignores modes) the immutable flag."""
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(stat.S_IRUSR | stat.S_IXUSR)
    immutable = False
    if os.geteuid() == 0:
        immutable = subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("running as root on a file system without the immutable flag: nothing is read-only")
    yield target
    if immutable:
        subprocess.run(["chattr", "-i", str(target)], check=True)
    target.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("kind", ["read-only", "a file", "a symlink loop"])
def test_unusable_runs_dir(tmp_path, kind, demo_predictions, request):
    target = tmp_path / "runs"
    if kind == "read-only":
        target = request.getfixturevalue("read_only_dir")
    elif kind == "a file":
        target.write_text("not a directory")
    else:
        (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
        (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
        target = tmp_path / "loop_a"
    proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(target), *FAST])
    refused(proc, str(target))
    score = run_bench(["score", "-p", str(demo_predictions), "-o", str(target / "x"), *FAST])
    refused(score, str(target))


def test_output_to_a_file_or_a_read_only_directory(tmp_path, complete_run, demo_predictions, read_only_dir):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    refused(run_bench(["score", "-p", str(demo_predictions), "-o", str(a_file), *FAST]), str(a_file))
    refused(run_bench(["score", "-p", str(demo_predictions), "-o", str(read_only_dir / "out"), *FAST]),
            str(read_only_dir))
    run_dir = record_paths(complete_run)[0].parents[2]
    refused(run_bench(["table", str(run_dir), "-o", str(a_file / "table.md"), "--n-boot", "0"]), str(a_file))
    refused(run_bench(["table", str(run_dir), "-o", str(read_only_dir / "table.md"), "--n-boot", "0"]),
            str(read_only_dir))


def test_bad_resampling_options_fail_before_any_work(tmp_path):
    runs = tmp_path / "runs"
    refused(run_bench(["run", "--model", "random_report", "--runs-dir", str(runs), "--n-boot", "-1",
                       "--no-progress"]), "--n-boot", code=2)
    assert not runs.exists()  # nothing generated
    accepted(run_bench(["run", "--model", "random_report", "--runs-dir", str(runs), "--seed", "-5", *FAST]))


def test_corrupt_cache_is_one_line_and_does_not_break_runs_that_need_no_cache(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "annotations.sqlite").write_bytes(b"garbage" * 1000)
    env = bench_env(BENCH_CACHE_DIR=str(cache))
    for command in (["cache", "verify"], ["cache", "stats"]):
        refused(run_bench(command, env=env), "annotations.sqlite")
    accepted(run_bench(["run", "--model", "random_report", "--runs-dir", str(tmp_path / "runs"), *FAST], env=env))


def test_cache_verify_on_a_typo_creates_nothing(tmp_path):
    typo = tmp_path / "cahce"
    refused(run_bench(["cache", "verify", "--cache", str(typo)]), "no annotation cache")
    assert not typo.exists()


def test_a_java_that_never_answers_times_out_with_a_clear_message(tmp_path, complete_run):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "java").write_text("#!/bin/sh\nsleep 600\n")
    (fake / "java").chmod(0o755)
    env = bench_env(PATH=f"{fake}:{os.environ['PATH']}", JAVA_HOME="", BENCH_NLG_TIMEOUT="3")
    before = snapshot(complete_run)
    started = time.time()
    proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), "--metrics", "nlg",
                      "--no-progress"], env=env, timeout=120)
    refused(proc, "Java", "did not answer")
    assert time.time() - started < 90
    assert_unchanged(before, complete_run)


def test_cuda_on_a_machine_without_cuda_is_refused_up_front(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    refused(run_bench(["run", "--model", "random_report", "--runs-dir", str(tmp_path), "--device", "cuda",
                       "--no-progress"]), "--device cuda", code=2)
    assert not list(tmp_path.rglob("predictions.jsonl"))


def test_missing_home_creates_nothing_outside_the_users_control(tmp_path):
    env = bench_env()
    for var in ("HOME", "BENCH_CACHE_DIR", "XDG_CACHE_HOME", "BENCH_WEIGHTS_DIR", "XDG_DATA_HOME"):
        env.pop(var, None)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(tmp_path / "runs"), "--metrics",
                      "chexbert", "--no-progress"], env=env, cwd=cwd)
    assert "Traceback" not in proc.stderr
    assert not list(cwd.iterdir()), list(cwd.iterdir())
    assert "HOME" in proc.stdout + proc.stderr


def test_sigterm_behaves_like_ctrl_c_and_the_run_resumes(tmp_path, plugin_site):
    runs = tmp_path / "runs"
    env = bench_env(plugin_site)
    args = [sys.executable, "-m", "rrg_bench", "run", "--model", "slow_echo", "--model-arg", "delay=0.5",
            "--batch-size", "2", "--runs-dir", str(runs), *FAST]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.stat().st_size for p in runs.rglob("predictions.jsonl")):
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    out, errs = child.communicate(timeout=60)
    assert child.returncode == 130 and "interrupted" in errs and "Traceback" not in errs
    accepted(subprocess.run(args, capture_output=True, text=True, env=env, timeout=300))
    (record,) = record_paths(runs)
    assert load(record)["status"]["state"] == "complete"


def test_a_200000_character_report_is_scored_with_a_warning(tmp_path, demo_predictions):
    lines = demo_predictions.read_text().splitlines()
    first = json.loads(lines[0])
    first["report"] = "the heart is normal in size. " * 6_900  # ~200,000 characters, a looping generator
    lines[0] = json.dumps(first)
    demo_predictions.write_text("\n".join(lines) + "\n")
    out = accepted(run_bench(["score", "-p", str(demo_predictions), "--runs-dir", str(tmp_path / "runs"),
                              "--metrics", "nlg,chexpert_rules", "--n-boot", "20", "--no-progress"], timeout=600))
    (record,) = record_paths(tmp_path / "runs")
    data = load(record)
    assert data["predictions"]["n_long"] == 1 and data["status"]["state"] == "complete"
    assert "bleu4[tok=ptb]" in data["metrics"] and "longer than 20,000 characters" in " ".join(out.split())
