"""``bench compare``, ``bench table`` and ``bench leaderboard`` end to end, with real NLG scoring.

The compare tests score real predictions on the shipped demo dataset: one run, a copy of its
record, its predictions with one study emptied, and its predictions scored under R2Gen's
tokenisation.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import REPO, only_record
from helpers.bench_cli import bench_env, run_bench
from helpers.leaderboard_records import copy_leaderboard
from rrg_bench.cli import app
from rrg_bench.leaderboard.boards import discover_root

BOARD = "iu_xray_r2gen_test"
runner = CliRunner()


def default_root() -> Path:
    """The repository's own leaderboard, wherever pytest was started."""
    return discover_root(REPO)


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


def test_leaderboard_check_on_the_repository_and_a_tampered_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("BENCH_LEADERBOARD_ROOT", raising=False)
    monkeypatch.chdir(REPO / "tests")  # the repository's leaderboard is found by walking up
    assert invoke("leaderboard", "check").exit_code == 0
    for version in sorted(p.name for p in (default_root() / "tables" / BOARD).iterdir()):  # current and published
        copy = copy_leaderboard(default_root(), tmp_path / f"lb-{version}")
        svg = next((copy / "tables" / BOARD / version).glob("*.svg"))
        svg.write_bytes(svg.read_bytes().replace(b"</svg>", b"<!-- x --></svg>"))
        result = invoke("leaderboard", "check", "--root", copy)
        assert result.exit_code == 3 and svg.name in result.output and version in result.output
    shutil.rmtree(copy / "tables")
    assert invoke("leaderboard", "check", "--root", copy).exit_code == 3


# ---------------------------------------------------------------- CI-readable output


def _committed_pair() -> tuple[Path, Path]:
    records = default_root() / "records" / BOARD
    base, new = next(records.glob("constant_normal-*.json"), None), next(records.glob("random_report-*.json"), None)
    if base is None or new is None:
        pytest.skip("no committed records")
    return base, new


def test_compare_json_and_markdown_for_scripts_and_pull_requests(demo):
    args = ("compare", demo["base"], demo["degraded"], "--n-boot", "50", "--n-trials", "20")
    as_json = invoke(*args, "--format", "json")
    assert as_json.exit_code == 3  # the gate still fails; stdout stays one JSON document
    doc = json.loads(as_json.stdout)
    assert doc["regression"] is True and "regression in" in as_json.stderr
    ids = [m["id"] for m in doc["metrics"]]
    assert ids == ["bleu1[tok=ptb]", "bleu2[tok=ptb]", "bleu3[tok=ptb]", "bleu4[tok=ptb]", "meteor[tok=ptb]",
                   "rouge_l[tok=ptb]", "cider_d[tok=ptb]"]
    bleu1 = doc["metrics"][0]
    assert bleu1["status"] == "regression" and bleu1["delta"] < 0 and len(bleu1["ci95"]) == 2
    assert {r["id"] for r in doc["regressions"]} >= {"bleu1[tok=ptb]"} and doc["dataset"]["n"] > 0

    as_md = invoke(*args, "--format", "md")
    assert as_md.exit_code == 3
    table = [line for line in as_md.stdout.split("<details>")[0].splitlines() if line.startswith("|")]
    header, rule, *body = table
    assert len(body) == len(ids) and all(line.count("|") == header.count("|") for line in table)
    assert set(rule.strip("|").split("|")) == {":---", "---:"}
    assert body[0].startswith("| BLEU-1 | ") and "**REGRESSION**" in as_md.stdout
    assert "| BLEU-1 | `bleu1[tok=ptb]` |" in as_md.stdout.split("<details>")[1]  # the exact ids, collapsed
    from markdown_it import MarkdownIt  # GitHub's table syntax (GFM), as a Markdown renderer sees it

    page = MarkdownIt("commonmark").enable("table").render(as_md.stdout)
    body_html = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert page.count("<table>") == 2 and page.count("<th style") == 9 + 2 and body_html.count("<tr>") == len(ids)
    assert "<td style=\"text-align:left\">BLEU-1</td>" in page and "<code>bleu1[tok=ptb]</code>" in page
    assert any(line.startswith("**Regression (--fail-on any): bleu1[tok=ptb] dropped")
               for line in as_md.stdout.splitlines())
    assert invoke(*args, "--format", "xml").exit_code == 2


def test_compare_json_through_a_real_pipe():
    base, new = _committed_pair()
    bench = f"{shlex.quote(sys.executable)} -m rrg_bench"
    proc = subprocess.run(f"{bench} compare {shlex.quote(str(base))} {shlex.quote(str(new))} --format json "
                          f"--n-boot 50 --n-trials 0 | {shlex.quote(sys.executable)} -m json.tool",
                          shell=True, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["base"]["system"] == "constant_normal"


@pytest.mark.parametrize("columns", ["40", "300"])
def test_compare_table_never_shortens_numbers_without_a_tty(columns: str):
    base, new = _committed_pair()
    args = [str(a) for a in ("compare", base, new, "--n-boot", "50", "--n-trials", "20")]
    doc = json.loads(invoke(*args, "--format", "json").stdout)
    proc = run_bench(args, env=bench_env(COLUMNS=columns))
    assert proc.returncode == 3, proc.stderr
    assert "…" not in proc.stdout
    lines = proc.stdout.splitlines()
    for m in doc["metrics"]:
        line = next(line for line in lines if line.strip().startswith(m["id"] + " "))
        lo, hi = m["ci95"]
        for text in (f"{m['base']:.4f}", f"{m['new']:.4f}", f"{m['delta']:+.4f}", f"[{lo:+.4f}, {hi:+.4f}]",
                     f"{m['p_bootstrap']:.4f}", f"{m['p_randomisation']:.4f}"):
            assert text in line, (text, line)


def test_table_decimals_paper_order_and_no_shortening(tmp_path: Path):
    base, new = _committed_pair()
    result = runner.invoke(app, ["table", str(base), str(new), "--n-boot", "0", "--decimals", "2"],
                           env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("| Model"))
    names = [h.strip() for h in header.strip("|").split("|")]
    assert names[1:8] == ["BLEU-1 ↑", "BLEU-2 ↑", "BLEU-3 ↑", "BLEU-4 ↑", "METEOR ↑", "ROUGE-L ↑", "CIDEr-D ↑"]
    assert names[8:10] == ["Rules F1-14 micro ↑", "Rules F1-14 macro ↑"]
    assert "| random_report | **0.30** ± 0.01 |" in result.stdout and "…" not in result.stdout


def test_table_header_names_the_convention_when_two_share_a_name(demo):
    result = invoke("table", demo["base"], demo["r2gen"], "--n-boot", "0", "--format", "md")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("| Model"))
    assert "BLEU-1 (tok=ptb) ↑" in header and "BLEU-1 (tok=r2gen) ↑" in header
    assert header.index("CIDEr-D (tok=ptb)") < header.index("BLEU-1 (tok=r2gen)")  # one block per convention


# ---------------------------------------------------------------- which leaderboard


def test_leaderboard_commands_work_on_the_repository_you_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from helpers.leaderboard_records import make_board_root, make_record

    monkeypatch.delenv("BENCH_LEADERBOARD_ROOT", raising=False)
    clone = tmp_path / "clone"
    make_board_root(clone / "leaderboard")
    (clone / "src" / "deep").mkdir(parents=True)
    record = make_record(tmp_path / "runs" / "a", "model_a", [1] * 30 + [0] * 10)
    monkeypatch.chdir(clone / "src" / "deep")
    assert invoke("leaderboard", "add", record).exit_code == 0
    built = invoke("leaderboard", "build")
    assert built.exit_code == 0, built.output
    assert (clone / "leaderboard" / "tables" / "toy_board" / "v1" / "table.html").is_file()
    assert not (default_root() / "tables" / "toy_board").exists()  # never the package's own tree

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    lost = invoke("leaderboard", "build")
    assert lost.exit_code == 2 and "no leaderboard here" in lost.output and "--root" in lost.output
    by_env = runner.invoke(app, ["leaderboard", "check"], env={"BENCH_LEADERBOARD_ROOT": str(clone / "leaderboard")})
    assert by_env.exit_code == 0, by_env.output
    assert invoke("leaderboard", "check", "--root", clone / "leaderboard").exit_code == 0
