"""Hugging Face datasets in and out, and a record's predictions exported in other formats (issue 13)."""

from __future__ import annotations

import json

import pytest

from helpers import only_record
from helpers.bench_cli import run_bench

datasets = pytest.importorskip("datasets")
FAST = ["--metrics", "chexpert_rules", "--n-boot", "20", "--no-progress"]


def _values(path):
    return {k: (v["value"], v["ci95"]) for k, v in json.loads(path.read_text())["metrics"].items()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(runs), *FAST])
    assert proc.returncode == 0, proc.stderr
    return only_record(runs)


def test_a_local_hf_dataset_and_a_parquet_file_score_like_the_jsonl(demo_run, tmp_path):
    predictions = demo_run.parents[2] / "predictions.jsonl"
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    data = datasets.Dataset.from_list(rows)
    data.save_to_disk(str(tmp_path / "hf_preds"))
    data.to_parquet(str(tmp_path / "preds.parquet"))
    records = {}
    for name, source in (("jsonl", predictions), ("hf", f"hf:{tmp_path / 'hf_preds'}"),
                         ("parquet", tmp_path / "preds.parquet")):
        out = tmp_path / name
        proc = run_bench(["score", "-p", str(source), "-o", str(out), "--name", name, *FAST])
        assert proc.returncode == 0, proc.stderr
        records[name] = only_record(out)
    assert _values(records["hf"]) == _values(records["jsonl"]) == _values(records["parquet"])
    assert _values(records["jsonl"]) == _values(demo_run)


def test_hf_source_errors_name_the_source(tmp_path):
    data = datasets.Dataset.from_list([{"id": "x", "text": "y"}])
    data.save_to_disk(str(tmp_path / "d"))
    proc = run_bench(["score", "-p", f"hf:{tmp_path / 'd'}", *FAST])
    assert proc.returncode != 0 and "no column 'study_id'" in proc.stderr and "Traceback" not in proc.stderr


def test_rexrank_export_round_trips(demo_run, tmp_path):
    exported = tmp_path / "submission.json"
    proc = run_bench(["export", str(demo_run.parents[2]), "--format", "rexrank", "-o", str(exported)])
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(exported.read_text())
    assert len(obj) == 12 and all(set(v) == {"report", "model_prediction"} for v in obj.values())
    proc = run_bench(["score", "-p", str(exported), "-o", str(tmp_path / "again"), *FAST])
    assert proc.returncode == 0, proc.stderr
    assert _values(only_record(tmp_path / "again")) == _values(demo_run)


def test_data_export_writes_ids_paths_and_hashes_but_no_text_by_default(tmp_path):
    assert run_bench(["data", "export", "demo", "-o", str(tmp_path / "hf")]).returncode == 0
    data = datasets.load_from_disk(str(tmp_path / "hf"))
    assert data.num_rows == 12 and "reference" not in data.column_names
    assert set(data.column_names) >= {"study_id", "reference_sha256", "image_paths", "frontal_image"}
    proc = run_bench(["data", "export", "demo", "-o", str(tmp_path / "t.parquet"), "--format", "parquet",
                      "--with-references", "--split", "train"])
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "t.parquet")
    assert len(frame) == 36 and frame["reference"].str.len().min() > 0


def test_image_generators_read_images_from_an_hf_dataset(tmp_path):
    from rrg_bench.registry import registry

    demo = registry("datasets").get("demo")()
    rows = [{"study_id": s.study_id, "image": str(s.frontal_image)}
            for split in demo.splits for s in demo.studies(split)]
    datasets.Dataset.from_list(rows).cast_column("image", datasets.Image()).save_to_disk(str(tmp_path / "imgs"))
    args = ["run", "--model", "knn_image", "--metrics", "nlg", "--n-boot", "0", "--no-progress"]
    files = run_bench([*args, "--runs-dir", str(tmp_path / "files")])
    hf = run_bench([*args, "--runs-dir", str(tmp_path / "hf"), "--images", f"hf:{tmp_path / 'imgs'}"])
    assert files.returncode == 0 and hf.returncode == 0, files.stderr + hf.stderr
    a, b = only_record(tmp_path / "files"), only_record(tmp_path / "hf")
    # the same pixels (re-encoded as PNG): the same neighbours, the same reports
    assert (a.parents[2] / "predictions.jsonl").read_text() == (b.parents[2] / "predictions.jsonl").read_text()
    spec = json.loads((b.parents[2] / "spec.json").read_text())
    assert spec["generation"]["images"]["source"].startswith("hf:")  # which images were seen is fingerprinted
