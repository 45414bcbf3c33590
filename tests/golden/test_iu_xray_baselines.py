"""Text baselines on the real IU X-Ray test split: complete records whose NLG values equal a
direct pycocoevalcap call on the same texts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from helpers import only_record
from helpers.pycocoevalcap_direct import direct_pycocoevalcap
from rrg_bench.cli import app


@pytest.mark.parametrize("model", ["constant_normal", "random_report", "oracle"])
def test_text_baseline_record_matches_pycocoevalcap(model, iu_root, tmp_path):
    result = CliRunner().invoke(app, [
        "run", "--model", model, "--dataset", "iu_xray/r2gen", "--split", "test", "--data-root", str(iu_root),
        "--runs-dir", str(tmp_path), "--metrics", "nlg", "--n-boot", "100", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    record_path = only_record(tmp_path)
    run_dir = record_path.parents[2]
    record = json.loads(record_path.read_text())
    assert record["status"]["state"] == "complete"
    assert record["predictions"]["n"] == record["dataset"]["n_expected"] == 590
    assert record["predictions"]["coverage"] == 1.0
    assert record["status"]["eligible"] is (model != "oracle")

    annotation = json.loads((iu_root / "annotation.json").read_text())
    refs = {e["id"]: e["report"] for e in annotation["test"]}
    hyps = {}
    for line in (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        hyps[obj["study_id"]] = obj["report"]
    assert list(hyps) == [e["id"] for e in annotation["test"]]
    per_sentence: dict[str, list[float]] = {}
    expected = direct_pycocoevalcap(refs, hyps, per_sentence)
    for metric_id, value in expected.items():
        got = record["metrics"][metric_id]["value"]
        assert abs(got - value) <= 1e-12, (metric_id, got, value)
        lo, hi = record["metrics"][metric_id]["ci95"]
        assert lo <= got + 1e-9 and got - 1e-9 <= hi or model == "oracle"
    if model == "oracle":
        assert record["metrics"]["bleu4[tok=ptb]"]["value"] == pytest.approx(1.0, abs=1e-6)
    # the record's samples: each study's per-study values are the per-sentence values pycocoevalcap returns
    import pandas as pd

    samples = pd.read_parquet(record_path.parent / record["samples"]["path"])
    assert list(samples.index) == list(refs) and (samples["prediction"] == pd.Series(hyps)).all()
    for metric_id, values in per_sentence.items():
        delta = (samples[metric_id].to_numpy() - pd.Series(values).to_numpy())
        assert abs(delta).max() <= 1e-12, (metric_id, abs(delta).max())
