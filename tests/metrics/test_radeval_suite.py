"""`bench run --metrics radeval` on the demo dataset, offline and without weights: RadEval's text
metrics are computed, every model metric is recorded unavailable with what to fetch, the record
is complete but not eligible, and the command exits 0."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rouge_score", reason="rouge-score is not installed")

from helpers import only_record  # noqa: E402
from helpers.bench_cli import bench_env, run_bench  # noqa: E402
from rrg_bench.metrics.suites import RADEVAL  # noqa: E402

MODEL_METRICS = {
    "bertscore[idf=false,layers=5,model=distilbert-base-uncased,rescale=true]": "distilbert-base-uncased",
    "radeval_bertscore": "bench weights fetch radeval-modernbert",
    "chexbert[uncertain=positive]": "bench weights fetch chexbert",
    "radgraph[model=radgraph-xl]": "bench weights fetch radgraph-xl",
    "ratescore[affinity=long]": "bench weights fetch rate-ner-deberta",
    "radgraph[model=radgraph]": "bench weights fetch radgraph",
    "srrbert": "bench weights fetch srr-bert-leaves-with-statuses",
    "temporal_f1[ner=stanza]": "stanza.download('en', package='radiology'",
    "green": "bench weights fetch green-radllama2-7b",
}


def test_radeval_suite_offline_on_demo(tmp_path):
    env = bench_env(BENCH_WEIGHTS_DIR=str(tmp_path / "weights"), BENCH_CACHE_DIR=str(tmp_path / "cache"),
                    XDG_CACHE_HOME=str(tmp_path / "xdg"), HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
                    HOME=str(tmp_path / "home"))
    proc = run_bench(["run", "--model", "constant_normal", "--metrics", "radeval", "--runs-dir",
                      str(tmp_path / "runs"), "--n-boot", "20", "--no-progress"], env=env)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(only_record(tmp_path / "runs").read_text())
    assert record["status"]["state"] == "complete" and not record["status"]["eligible"]
    reason = record["status"]["reasons"][0]
    assert f"{len(MODEL_METRICS)} of {len(RADEVAL.specs)} requested metrics unavailable" in reason
    assert set(record["unavailable"]) == set(MODEL_METRICS)
    for spec, fix in MODEL_METRICS.items():
        assert fix in record["unavailable"][spec], spec
    text = {"bleu1[tok=whitespace]", "bleu2[tok=whitespace]", "bleu3[tok=whitespace]", "bleu4[tok=whitespace]",
            "rouge1[rouge_score,stem=true]", "rouge2[rouge_score,stem=true]", "rougeL[rouge_score,stem=true]"}
    assert set(record["metrics"]) == text
    assert all(0 < record["metrics"][m]["value"] <= 1 for m in text)
