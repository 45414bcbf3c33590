"""`accelerate launch --num_processes 2 -m bench generate` writes the same bytes as one process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.bench_cli import bench_env, run_bench


def test_two_process_generation_is_byte_identical(plugin_site, tmp_path):
    if shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("accelerate is not installed in this environment")
    env = bench_env(plugin_site)
    args = ["generate", "--model", "slow_echo", "--model-arg", "delay=0", "--split", "train", "--batch-size", "3",
            "--no-progress"]
    single = run_bench(args + ["--runs-dir", str(tmp_path / "single")], env=env)
    assert single.returncode == 0, single.stderr
    accelerate = str(Path(sys.executable).parent / "accelerate")
    proc = subprocess.run([accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "bench", *args,
                           "--runs-dir", str(tmp_path / "multi")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = next((tmp_path / "single").rglob("predictions.jsonl")).read_bytes()
    multi_files = list((tmp_path / "multi").rglob("predictions.jsonl"))
    assert len(multi_files) == 1 and not list((tmp_path / "multi").rglob("rank*.jsonl"))
    assert multi_files[0].read_bytes() == a
