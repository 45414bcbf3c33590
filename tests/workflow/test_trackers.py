"""Experiment trackers, offline: a W&B offline run and an MLflow file store, logged and read back."""

from __future__ import annotations

import json
import struct

import pytest

from helpers.bench_cli import bench_env, run_bench

ARGS = ["run", "--model", "random_report", "--metrics", "chexpert_rules", "--n-boot", "20", "--no-progress"]
MICRO = "chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]"


def _wandb_records(path):
    """The protobuf records of a .wandb file (W&B's LevelDB-style log: 7-byte file header, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, records, partial = path.read_bytes(), 7, [], b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        partial = chunk if kind in (1, 2) else partial + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(partial)
            records.append(record)
    return records


def test_wandb_offline_run_holds_the_metrics_with_cis_and_the_record(tmp_path):
    pytest.importorskip("wandb")
    env = bench_env(WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_PROJECT="rrg-bench-test")
    proc = run_bench([*ARGS, "--runs-dir", str(tmp_path / "runs"), "--log-to", "wandb"], env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "logged to wandb run" in proc.stdout, proc.stderr
    record = json.loads(next((tmp_path / "runs").rglob("records/*/results.json")).read_text())
    (log,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    history = {}
    artifacts = []
    for rec in _wandb_records(log):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.update({item.key or "/".join(item.nested_key): item.value_json for item in rec.history.item})
        elif kind == "artifact":
            artifacts.append(rec.artifact.name)
    assert float(history[MICRO]) == record["metrics"][MICRO]["value"]
    assert float(history[f"{MICRO}/ci95_low"]) == record["metrics"][MICRO]["ci95"][0]
    assert history["samples/_type"] == '"table-file"' and history["samples/nrows"] == "12"  # the samples table
    assert f"record-{record['run_fingerprint'][:16]}" in artifacts


def test_mlflow_file_store_run_holds_the_metrics_with_cis_and_the_record(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    uri = f"file://{tmp_path / 'mlruns'}"
    env = bench_env(MLFLOW_TRACKING_URI=uri, MLFLOW_ALLOW_FILE_STORE="true")
    proc = run_bench([*ARGS, "--runs-dir", str(tmp_path / "runs"), "--log-to", "mlflow"], env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "logged to mlflow run" in proc.stdout, proc.stderr
    record = json.loads(next((tmp_path / "runs").rglob("records/*/results.json")).read_text())
    client = mlflow.tracking.MlflowClient(uri)
    (run_id,) = [line.split()[4] for line in proc.stdout.splitlines() if "logged to mlflow run" in line]
    run = client.get_run(run_id)
    key = "chexpert_rules_f1.labels_14.avg_micro.uncertain_positive"
    assert run.data.metrics[key] == record["metrics"][MICRO]["value"]
    assert run.data.metrics[key + ".ci95_high"] == record["metrics"][MICRO]["ci95"][1]
    assert run.data.params["run_fingerprint"] == record["run_fingerprint"]
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"results.json", "samples.json", "metric_ids.json"} <= names


def test_unknown_tracker_or_missing_package_fails_before_any_work(tmp_path):
    proc = run_bench([*ARGS, "--runs-dir", str(tmp_path / "runs"), "--log-to", "tensorboard"])
    assert proc.returncode == 2 and "--log-to 'tensorboard'" in proc.stderr
    assert not (tmp_path / "runs").exists()
