"""MoERad's published IU X-Ray predictions, scored by `bench score` the ReXrank way.

MoERad (github.com/gssriram/MoERad) committed its predictions (preds.csv, and ReXrank's JSON
format MoERad.json), the references it scored against (gts.csv) and CXR-Report-Metric's
per-study output (report_scores.csv). gts.csv holds ReXrank's IU X-Ray *findings* text, i.e.
exactly the references of our `iu_xray/rexrank/findings` dataset (checked below by hash), so
`bench score` against that manifest must reproduce every per-study BLEU-2 bit for bit.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import only_record, shared_dir
from rrg_bench.cli import app
from rrg_bench.manifests import load_manifest

MOERAD = shared_dir() / "data" / "external_predictions" / "MoERad"


@pytest.fixture(scope="module")
def moerad() -> Path:
    if not (MOERAD / "report_scores.csv").is_file():
        pytest.skip(f"MoERad files not found at {MOERAD} (set BENCH_SHARED)")
    return MOERAD


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_moerad_gts_are_the_rexrank_findings_references(moerad):
    gts = _rows(moerad / "gts.csv")
    rows = load_manifest("iu_xray/rexrank").rows("test")
    assert [g["study_id"] for g in gts] == [r["study_id"] for r in rows]
    assert all(_sha(g["report"]) == r["findings_sha256"] for g, r in zip(gts, rows))
    # ... and not the "Findings: ... Impression: ..." ground truth of ReXrank's main track
    assert not any(_sha(g["report"]) == r["reference_sha256"] for g, r in zip(gts, rows))
    # the same texts are iu_xray/r2gen's references (R2Gen's report = Open-i findings)
    r2gen = load_manifest("iu_xray/r2gen").rows("test")
    assert [r["findings_sha256"] for r in rows] == [r["reference_sha256"] for r in r2gen]


def _score(predictions: Path, out: Path, data_root: Path) -> tuple[dict, pd.DataFrame]:
    result = CliRunner().invoke(app, [
        "score", "--predictions", str(predictions), "--dataset", "iu_xray/rexrank/findings", "--split", "test",
        "--data-root", str(data_root), "--metrics", "bleu2_rexrank", "--n-boot", "50", "--no-progress",
        "--output", str(out),
    ])
    assert result.exit_code == 0, result.output
    path = only_record(out)
    record = json.loads(path.read_text())
    return record, pd.read_parquet(path.parent / record["scores"]["bleu2_rexrank"]["path"])


def test_bench_score_reproduces_every_per_study_bleu2(moerad, tmp_path):
    record, stats = _score(moerad / "preds.csv", tmp_path / "csv", moerad.parents[1] / "iu_xray")
    assert record["dataset"]["name"] == "iu_xray/rexrank/findings"
    assert record["dataset"]["reference_policy"] == "findings"
    assert record["status"]["state"] == "complete" and record["status"]["eligible"]
    preds, scores = _rows(moerad / "preds.csv"), _rows(moerad / "report_scores.csv")
    # report_scores.csv numbers the studies 0..589 in preds.csv order and repeats the prediction
    assert [p["report"] for p in preds] == [s["report"] for s in scores]
    expected = pd.Series([float(s["bleu_score"]) for s in scores], index=[p["study_id"] for p in preds])
    got = stats["bleu2"]
    assert list(got.index) == list(expected.index)
    assert (got.to_numpy() == expected.to_numpy()).all()  # exact, every study
    assert record["metrics"]["bleu2_rexrank"]["value"] == pytest.approx(expected.mean(), abs=1e-15)


def test_rexrank_json_predictions_score_the_same(moerad, tmp_path):
    """MoERad.json is ReXrank's submission format: its 'report' is the ground truth and the
    prediction is 'model_prediction', which `bench score` reads by default for that shape."""
    _, from_csv = _score(moerad / "preds.csv", tmp_path / "csv", moerad.parents[1] / "iu_xray")
    record, from_json = _score(moerad / "MoERad.json", tmp_path / "json", moerad.parents[1] / "iu_xray")
    assert record["generator"]["source_sha256"] == hashlib.sha256((moerad / "MoERad.json").read_bytes()).hexdigest()
    pd.testing.assert_frame_equal(from_csv, from_json)
