"""Class 5: a predictions file that is not what the run wrote is never scored as its output."""

from __future__ import annotations

import json

from conftest import FAST, assert_unchanged, record_paths, refused, snapshot

from helpers.bench_cli import run_bench


def _rerun(runs):
    return run_bench(["run", "--model", "random_report", "--runs-dir", str(runs), "--metrics", "nlg", "--no-progress"])


def test_an_edited_line_is_refused_by_line_number(complete_run):
    predictions = record_paths(complete_run)[0].parents[2] / "predictions.jsonl"
    lines = predictions.read_text().splitlines(keepends=True)
    for index in (2, len(lines) - 1):  # a line of the first batch, and one of the last
        edited = lines.copy()
        obj = json.loads(edited[index])
        obj["report"] = "a much better report."
        edited[index] = json.dumps(obj) + "\n"
        predictions.write_text("".join(edited))
        before = snapshot(complete_run)
        refused(_rerun(complete_run), f"predictions.jsonl:{index + 1}:", "differs from what the run wrote")
        assert_unchanged(before, complete_run)
        predictions.write_text("".join(lines))


def test_an_appended_conflicting_line_is_refused(complete_run):
    predictions = record_paths(complete_run)[0].parents[2] / "predictions.jsonl"
    lines = predictions.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])
    with predictions.open("a") as fh:
        fh.write(json.dumps({"study_id": first["study_id"], "report": "appended."}) + "\n")
    before = snapshot(complete_run)
    refused(_rerun(complete_run), f"predictions.jsonl:{len(lines) + 1}:", "not written by the run")
    assert_unchanged(before, complete_run)


def test_a_torn_last_line_is_repaired_not_refused(complete_run):
    predictions = record_paths(complete_run)[0].parents[2] / "predictions.jsonl"
    good = predictions.read_bytes()
    predictions.write_bytes(good + b'{"study_id": "x", "rep')
    proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), *FAST])
    assert proc.returncode == 0, proc.stderr
    assert predictions.read_bytes() == good
