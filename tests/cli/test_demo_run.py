"""The README's first command on the shipped demo dataset, and the baselines' ordering on it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rrg_bench.cli import app


def _record(runs, model):
    return json.loads(next((runs / "demo" / "test" / model).rglob("results.json")).read_text())


def test_demo_run_prints_table_and_knn_beats_random(tmp_path):
    runner = CliRunner()
    for model in ("knn_image", "random_report"):
        result = runner.invoke(app, ["run", "--model", model, "--runs-dir", str(tmp_path), "--metrics", "nlg",
                                     "--n-boot", "100", "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "BLEU-4" in result.output and "95% CI" in result.output
    knn, rnd = _record(tmp_path, "knn_image"), _record(tmp_path, "random_report")
    for metric in ("bleu4[tok=ptb]", "rouge_l[tok=ptb]"):
        assert knn["metrics"][metric]["value"] > rnd["metrics"][metric]["value"], metric


def test_rerun_resumes_and_generates_nothing(tmp_path):
    runner = CliRunner()
    args = ["generate", "--model", "random_report", "--runs-dir", str(tmp_path), "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "generated now" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "(0 generated now)" in again.output


def test_limit_is_a_prefix_and_ineligible(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--model", "random_report", "--runs-dir", str(tmp_path), "--limit", "5",
                                 "--metrics", "nlg", "--n-boot", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    record = _record(tmp_path, "random_report")
    assert record["predictions"]["n"] == 5 and record["status"]["eligible"] is False
    assert any("--limit 5" in r for r in record["status"]["reasons"])
