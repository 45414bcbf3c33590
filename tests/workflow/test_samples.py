"""Per-study samples: texts beside per-study values, in every record (issue 13)."""

from __future__ import annotations

import json

import pandas as pd

from helpers import only_record
from helpers.bench_cli import run_bench


def test_every_record_has_samples_and_bench_samples_shows_the_worst(tmp_path):
    runs = tmp_path / "runs"
    proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(runs), "--metrics", "chexpert_rules",
                      "--n-boot", "10", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    record_path = only_record(runs)
    record = json.loads(record_path.read_text())
    samples = pd.read_parquet(record_path.parent / record["samples"]["path"])
    assert len(samples) == 12 and samples.index.name == "study_id"
    assert samples["reference"].str.len().min() > 0 and samples["prediction"].notna().all()
    agreement = "chexpert_rules[uncertain=positive]:agreement"
    assert samples[agreement].between(0, 1).all()
    jsonl = run_bench(["samples", str(runs / "demo" / "test" / "random_report"), "--format", "jsonl"])
    assert jsonl.returncode != 0  # a model folder is not a run directory: named clearly
    run_dir = record_path.parents[2]
    worst = run_bench(["samples", str(run_dir), "--worst", agreement, "-n", "3", "--format", "jsonl"])
    assert worst.returncode == 0, worst.stderr
    rows = [json.loads(line) for line in worst.stdout.splitlines()]
    assert [r["study_id"] for r in rows] == list(samples.sort_values([agreement, "study_id"]).index[:3])


def test_samples_of_a_record_are_never_overwritten_by_a_limited_rerun(tmp_path):
    runs = tmp_path / "runs"
    base = ["run", "--model", "random_report", "--runs-dir", str(runs), "--metrics", "chexpert_rules",
            "--n-boot", "10", "--no-progress"]
    assert run_bench(base).returncode == 0
    full = only_record(runs)
    before = (full.parent / "samples.parquet").read_bytes()
    assert run_bench([*base, "--limit", "3"]).returncode == 0
    assert (full.parent / "samples.parquet").read_bytes() == before
