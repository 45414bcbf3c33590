"""A run killed with SIGKILL mid-generation resumes to a byte-identical predictions file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.bench_cli import bench_env, run_bench


def _predictions(root: Path) -> Path:
    found = list(root.rglob("predictions.jsonl"))
    assert len(found) == 1, found
    return found[0]


def test_sigkill_mid_generation_then_resume_is_byte_identical(plugin_site, tmp_path):
    env = bench_env(plugin_site)
    common = ["generate", "--model", "slow_echo", "--model-arg", "delay=0.15", "--split", "train",
              "--batch-size", "2", "--no-progress"]
    ref_dir, killed_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    proc = run_bench(common + ["--runs-dir", str(ref_dir)], env=env)
    assert proc.returncode == 0, proc.stderr
    reference = _predictions(ref_dir).read_bytes()
    n_total = reference.count(b"\n")
    assert n_total >= 20

    slow = common + ["--runs-dir", str(killed_dir)]
    child = subprocess.Popen([sys.executable, "-m", "rrg_bench", *slow], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    lines_at_kill = 0
    while time.time() < deadline:
        files = list(killed_dir.rglob("predictions.jsonl"))
        if files and files[0].read_bytes().count(b"\n") >= 4:
            lines_at_kill = files[0].read_bytes().count(b"\n")
            break
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert 0 < lines_at_kill < n_total, "the kill must land mid-generation"
    # simulate the worst case a kill can leave: a torn, half-written last line
    path = _predictions(killed_dir)
    with open(path, "ab") as fh:
        fh.write(b'{"study_id": "demo-tr')
    assert path.read_bytes().count(b"\n") < n_total

    proc = run_bench(slow, env=env)
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes().count(b"\n") == n_total
    assert path.read_bytes() == reference
