"""Class 6: a board never publishes a value that does not follow from its record's statistics."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import FAST, accepted, record_paths, refused

from helpers import REPO
from helpers.bench_cli import run_bench


@pytest.fixture
def board_copy(tmp_path):
    root = tmp_path / "leaderboard"
    shutil.copytree(REPO / "leaderboard", root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def _board_and_record(root):
    board = "iu_xray_r2gen_test"
    spec = (root / "boards" / f"{board}.yaml").read_text()
    version = int(re.search(r"^version: (\d+)$", spec, re.M).group(1))
    record = sorted((root / "records" / board).glob("random_report-*.json"))[0]
    return board, version, record


def test_an_edited_value_fails_check_even_with_a_new_version_and_changelog(board_copy):
    board, version, record = _board_and_record(board_copy)
    data = json.loads(record.read_text())
    metric = "bleu4[tok=ptb]"
    data["metrics"][metric]["value"] += 0.2
    record.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    spec = board_copy / "boards" / f"{board}.yaml"
    spec.write_text(re.sub(r"^version: \d+$", f"version: {version + 1}", spec.read_text(), flags=re.M))
    with (board_copy / "CHANGELOG.md").open("a") as fh:
        fh.write(f"\n- {board} v{version + 1}: a better number\n")
    build = run_bench(["leaderboard", "build", board, "--root", str(board_copy)])
    refused(build, record.name, metric, code=3)
    check = run_bench(["leaderboard", "check", board, "--root", str(board_copy)])
    assert check.returncode == 3 and "Traceback" not in check.stdout + check.stderr
    assert record.name in check.stdout + check.stderr and metric in check.stdout + check.stderr


def test_add_refuses_a_hand_edited_record(tmp_path, board_copy):
    runs = tmp_path / "runs"
    accepted(run_bench(["run", "--model", "random_report", "--runs-dir", str(runs), *FAST]))
    (record,) = record_paths(runs)
    data = json.loads(record.read_text())
    metric = next(iter(data["metrics"]))
    data["metrics"][metric]["value"] = 0.9
    record.write_text(json.dumps(data))
    (board_copy / "boards" / "demo_test.yaml").write_text(
        "board: demo_test\nversion: 1\ntitle: demo\ndataset: {name: demo, split: test}\n"
        f"columns: ['{metric}']\nsort: {{metric: '{metric}'}}\n")
    proc = run_bench(["leaderboard", "add", str(record), "--root", str(board_copy)])
    refused(proc, metric, "per-study statistics give")
    assert not (board_copy / "records" / "demo_test").exists()
