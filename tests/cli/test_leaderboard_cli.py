"""``bench compare``, ``bench table`` and ``bench leaderboard`` end to end, with real NLG scoring.

The compare tests score real predictions on the shipped demo dataset: one run, a copy of its
record, its predictions with one study emptied, and its predictions scored under R2Gen's
tokenisation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import only_record
from helpers.leaderboard_records import copy_leaderboard
from rrg_bench.cli import app
from rrg_bench.leaderboard.boards import default_root

BOARD = "iu_xray_r2gen_test"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _score(predictions: Path, out: Path, metrics: str = "nlg") -> Path:
    result = invoke("score", "--predictions", predictions, "--dataset", "demo", "--split", "test", "--name", out.name,
                    "--metrics", metrics, "--output", out, "--n-boot", "50", "--no-progress")
    assert result.exit_code == 0, result.output
    return only_record(out)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("demo_compare")
    result = invoke("run", "--model", "constant_normal", "--runs-dir", tmp / "runs", "--metrics", "nlg",
                    "--n-boot", "50", "--no-progress")
    assert result.exit_code == 0, result.output
    run_dir = only_record(tmp / "runs").parents[2]
    lines = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    degraded = [dict(obj, report="") if i == 0 else obj for i, obj in enumerate(lines)]  # one study emptied
    bad = tmp / "degraded.jsonl"
    bad.write_text("".join(json.dumps(o) + "\n" for o in degraded))
    return {
        "base": run_dir,
        "same": Path(shutil.copytree(run_dir, tmp / "same")),  # identical record, another place
        "degraded": _score(bad, tmp / "degraded"),
        "r2gen": _score(run_dir / "predictions.jsonl", tmp / "r2gen", "nlg[tok=r2gen]"),
        "tmp": tmp,
    }


def test_compare_identical_predictions_exits_0(demo):
    result = invoke("compare", demo["base"], demo["same"], "--n-boot", "100", "--n-trials", "100")
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output and "bleu4[tok=ptb]" in result.output


def test_compare_degraded_prediction_exits_3_naming_the_metric(demo):
    result = invoke("compare", demo["base"], demo["degraded"], "--n-boot", "100", "--n-trials", "100")
    assert result.exit_code == 3, result.output
    assert "REGRESSION" in result.output
    assert "regression in" in result.output and "bleu1[tok=ptb] dropped" in result.output


def test_compare_tolerance_file_lets_a_small_drop_pass(demo, tmp_path: Path):
    tol = tmp_path / "tol.yaml"
    tol.write_text('default: 0.5\n')
    result = invoke("compare", demo["base"], demo["degraded"], "--tolerance", tol, "--n-boot", "50",
                    "--n-trials", "0")
    assert result.exit_code == 0, result.output


def test_compare_refuses_another_tokenisation(demo):
    result = invoke("compare", demo["base"], demo["r2gen"], "--n-boot", "0")
    assert result.exit_code == 1
    assert "different metric conventions" in result.output and "tok=r2gen" in result.output


def test_compare_usage_errors(demo, tmp_path: Path):
    assert invoke("compare", demo["base"], demo["same"], "--fail-on", "sometimes").exit_code == 2
    missing = invoke("compare", demo["base"], tmp_path)
    assert missing.exit_code == 1 and "no results record here" in missing.output


def test_leaderboard_add_build_check_on_a_demo_board(demo, tmp_path: Path):
    root = tmp_path / "lb"
    (root / "boards").mkdir(parents=True)
    (root / "boards" / "demo_test.yaml").write_text(
        "board: demo_test\nversion: 1\ntitle: Demo test\n"
        "dataset: {name: demo, split: test}\n"
        "columns: ['bleu4[tok=ptb]', 'rouge_l[tok=ptb]']\n"
        "sort: {metric: 'bleu4[tok=ptb]'}\n")
    (root / "CHANGELOG.md").write_text("- demo_test v1: test\n")
    for key in ("base", "degraded", "r2gen"):
        added = invoke("leaderboard", "add", demo[key], "--root", root)
        assert added.exit_code == 0, added.output
    assert "not ranked" in added.output and "tok=r2gen" in added.output  # the r2gen record
    built = invoke("leaderboard", "build", "demo_test", "--root", root)
    assert built.exit_code == 0, built.output
    table = json.loads((root / "tables" / "demo_test" / "v1" / "table.json").read_text())
    ranked = [r for r in table["rows"] if r["eligible"]]
    assert len(ranked) == 2 and len(table["rows"]) == 3
    assert invoke("leaderboard", "check", "--root", root).exit_code == 0
    again = invoke("leaderboard", "build", "--root", root)
    assert again.exit_code == 0 and "unchanged" in again.output
    csv_file = root / "tables" / "demo_test" / "v1" / "table.csv"
    csv_file.write_text(csv_file.read_text() + "tampered\n")
    failed = invoke("leaderboard", "check", "--root", root)
    assert failed.exit_code == 3 and "table.csv" in failed.output
    assert invoke("leaderboard", "build", "nope", "--root", root).exit_code == 2


def test_table_command_on_committed_records_with_baseline(tmp_path: Path):
    records = sorted((default_root() / "records" / BOARD).glob("*.json"))
    if not records:
        pytest.skip("no committed records")
    base = next(p for p in records if p.name.startswith("constant_normal-"))
    others = [p for p in records if not p.name.startswith(("constant_normal-", "oracle-"))]
    result = invoke("table", *others, "--baseline", base, "--format", "md", "--n-boot", "200")
    assert result.exit_code == 0, result.output
    assert "constant_normal (baseline)" in result.output and "* differs from the baseline" in result.output
    assert "ROUGE-L" in result.output
    out = tmp_path / "t.tex"
    assert invoke("table", *records, "--format", "tex", "--n-boot", "0", "--output", out).exit_code == 0
    assert r"\toprule" in out.read_text()
    assert invoke("table", *records, "--format", "docx").exit_code == 2


def test_compare_committed_records_uses_their_companion_statistics():
    records = default_root() / "records" / BOARD
    base = next(records.glob("constant_normal-*.json"), None)
    new = next(records.glob("random_report-*.json"), None)
    if base is None or new is None:
        pytest.skip("no committed records")
    result = invoke("compare", base, new, "--n-boot", "200", "--n-trials", "100", "--fail-on", "significant")
    assert result.exit_code == 3, result.output
    assert "cider_d[tok=ptb]" in result.output.split("regression in", 1)[1]


def test_leaderboard_check_on_the_repository_and_a_tampered_copy(tmp_path: Path):
    assert invoke("leaderboard", "check").exit_code == 0
    for version in sorted(p.name for p in (default_root() / "tables" / BOARD).iterdir()):  # current and published
        copy = copy_leaderboard(default_root(), tmp_path / f"lb-{version}")
        svg = next((copy / "tables" / BOARD / version).glob("*.svg"))
        svg.write_bytes(svg.read_bytes().replace(b"</svg>", b"<!-- x --></svg>"))
        result = invoke("leaderboard", "check", "--root", copy)
        assert result.exit_code == 3 and svg.name in result.output and version in result.output
    shutil.rmtree(copy / "tables")
    assert invoke("leaderboard", "check", "--root", copy).exit_code == 3
