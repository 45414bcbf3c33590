"""Sharded generation across 2 processes writes the same bytes as one process.

`accelerate launch --cpu` always starts a single process (accelerate's simple launcher), so
these tests launch two real processes with `accelerate launch --multi_gpu`, which goes
through torchrun; on a CPU-only machine the harness shards over a gloo process group.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.bench_cli import bench_env, run_bench

ACCELERATE = Path(sys.executable).parent / "accelerate"


def _launch(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if not ACCELERATE.exists():
        pytest.skip("accelerate is not installed in this environment")
    cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rrg_bench", *args]
    return subprocess.run(cmd, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900)


def test_two_process_generation_is_byte_identical(plugin_site, tmp_path):
    env = bench_env(plugin_site)
    args = ["generate", "--model", "slow_echo", "--model-arg", "delay=0", "--split", "train", "--batch-size", "3",
            "--no-progress"]
    single = run_bench(args + ["--runs-dir", str(tmp_path / "single")], env=env)
    assert single.returncode == 0, single.stderr
    proc = _launch(args + ["--runs-dir", str(tmp_path / "multi")], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # both ranks generated: 36 train studies in 12 batches of 3, dealt round-robin
    assert proc.stdout.count("(18 generated now)") == 2, proc.stdout
    a = next((tmp_path / "single").rglob("predictions.jsonl")).read_bytes()
    multi_files = list((tmp_path / "multi").rglob("predictions.jsonl"))
    assert len(multi_files) == 1 and not list((tmp_path / "multi").rglob("rank*.jsonl"))
    assert multi_files[0].read_bytes() == a


def test_two_process_anat_attn_run_is_byte_identical(iu_source, tmp_path):
    from helpers.iu_images import write_iu_images
    from rrg_bench.baselines.anat_attn.tiny import build_tiny_checkpoint

    n = 6
    reports = [r["report"] for r in json.loads((iu_source / "annotation.json").read_text())["train"]]
    ckpt = build_tiny_checkpoint(tmp_path / "tiny", reports, text_positions=48)
    root = tmp_path / "iu"
    root.mkdir()
    shutil.copy(iu_source / "annotation.json", root / "annotation.json")
    write_iu_images(root, "test", limit=n)
    args = ["run", "--model", "anat_attn", "--checkpoint", str(ckpt), "--dataset", "iu_xray/r2gen", "--split",
            "test", "--data-root", str(root), "--limit", str(n), "--batch-size", "2", "--metrics", "nlg",
            "--n-boot", "0", "--model-arg", "max_new_tokens=12", "--no-progress"]
    env = bench_env()
    single = run_bench(args + ["--runs-dir", str(tmp_path / "single")], env={**env, "OMP_NUM_THREADS": "1"},
                       timeout=900)
    assert single.returncode == 0, single.stderr
    proc = _launch(args + ["--runs-dir", str(tmp_path / "multi")], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = next((tmp_path / "single").rglob("predictions.jsonl")).read_bytes()
    b = next((tmp_path / "multi").rglob("predictions.jsonl")).read_bytes()
    assert a.count(b"\n") == n and a == b
    record = json.loads(next((tmp_path / "multi").rglob("results.json")).read_text())
    assert record["run"]["world_size"] == 2
