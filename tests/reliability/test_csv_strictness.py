"""Class 4: CSV predictions are read strictly; null and NaN reports get the same treatment."""

from __future__ import annotations

import csv
import io
import json

from conftest import FAST, accepted, load, record_paths, refused

from helpers.bench_cli import run_bench


def _ids():
    from rrg_bench.registry import registry

    return [s.study_id for s in registry("datasets").get("demo")().studies("test")]


def test_unquoted_comma_short_row_and_duplicate_column_name_the_line(tmp_path):
    ids = _ids()
    cases = {
        "comma": ("study_id,report\n" + "".join(f"{i},heart normal, lungs clear\n" for i in ids), ":2:", "fields"),
        "short": ("study_id,report\n" + "".join(f"{i},ok\n" for i in ids[:-1]) + f"{ids[-1]}\n",
                  f":{len(ids) + 1}:", "1 fields"),
        "dup": ("study_id,report,report\n" + "".join(f"{i},a,b\n" for i in ids), ":1:", "report"),
    }
    for name, (text, where, what) in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        proc = run_bench(["score", "-p", str(path), "--runs-dir", str(tmp_path / "runs"), *FAST])
        refused(proc, f"{path}{where}", what)
    assert not record_paths(tmp_path / "runs")


def test_quoted_commas_are_read_whole(tmp_path):
    ids = _ids()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["study_id", "report"])
    writer.writerows([i, "heart normal, lungs clear, no effusion."] for i in ids)
    path = tmp_path / "ok.csv"
    path.write_text(buffer.getvalue())
    accepted(run_bench(["score", "-p", str(path), "--runs-dir", str(tmp_path / "runs"), *FAST]))
    (record,) = record_paths(tmp_path / "runs")
    assert load(record)["predictions"]["n_empty"] == 0


def test_null_and_nan_reports_are_treated_alike(tmp_path):
    ids = _ids()
    outcomes = []
    for token in ("null", "NaN"):
        path = tmp_path / f"{token}.jsonl"
        lines = [json.dumps({"study_id": i, "report": "no acute findings."}) for i in ids[1:]]
        path.write_text(f'{{"study_id": "{ids[0]}", "report": {token}}}\n' + "\n".join(lines) + "\n")
        out = accepted(run_bench(["score", "-p", str(path), "--runs-dir", str(tmp_path / token), *FAST]))
        (record,) = record_paths(tmp_path / token)
        data = load(record)
        outcomes.append((data["predictions"]["n_null"], data["predictions"]["n_empty"], data["metrics"]))
        assert "1 predictions were null/NaN" in " ".join(out.split())
    assert outcomes[0] == outcomes[1] and outcomes[0][:2] == (1, 1)
