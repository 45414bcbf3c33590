"""`bench score` on malformed files: non-zero exit, one line naming the line or ids, no record,
no traceback."""

from __future__ import annotations

import json

import pytest

from helpers import only_record
from helpers.bench_cli import bench_env, run_bench


def _demo_test_ids() -> list[str]:
    from rrg_bench.datasets.demo.dataset import DemoDataset

    return [s.study_id for s in DemoDataset().studies("test")]


def _line(sid: str, report: str = "no acute findings") -> str:
    return json.dumps({"study_id": sid, "report": report}) + "\n"


def _cases(ids: list[str]) -> dict[str, tuple[bytes, str]]:
    good = [_line(i) for i in ids]
    return {
        "duplicate": ("".join(good + [good[0]]).encode(),
                      f"duplicate study ids (1: {ids[0]} (lines 1 and {len(ids) + 1}))"),
        "missing": ("".join(good[1:]).encode(), f"missing predictions for 1: {ids[0]}"),
        "extra": ("".join(good + [_line("not-a-study")]).encode(), "ids not in the split (1: not-a-study)"),
        "not_json": ("".join(good[:2] + ["{oops\n"] + good[2:]).encode(), "preds.jsonl:3: not valid JSON"),
        "no_report": ("".join(good[:1] + [json.dumps({"study_id": ids[1], "text": "x"}) + "\n"] + good[2:]).encode(),
                      "preds.jsonl:2: missing field 'report'"),
        "not_utf8": ("".join(good[:3]).encode() + b'{"study_id": "x", "report": "\xff\xfe"}\n',
                     "preds.jsonl:4: not valid UTF-8"),
        "empty": (b"", "preds.jsonl: the file is empty"),
    }


@pytest.mark.parametrize("case", ["duplicate", "missing", "extra", "not_json", "no_report", "not_utf8", "empty"])
def test_bad_predictions_fail_cleanly(case, tmp_path):
    content, message = _cases(_demo_test_ids())[case]
    preds = tmp_path / "preds.jsonl"
    preds.write_bytes(content)
    out = tmp_path / "out"
    proc = run_bench(["score", "--predictions", str(preds), "--metrics", "nlg", "--output", str(out),
                      "--no-progress"], env=bench_env())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert not list(out.rglob("results.json"))


def test_partial_predictions_with_allow_partial_are_ineligible(tmp_path):
    ids = _demo_test_ids()
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(_line(i, "") for i in ids[2:]))
    out = tmp_path / "out"
    proc = run_bench(["score", "--predictions", str(preds), "--metrics", "nlg", "--output", str(out),
                      "--allow-partial", "--n-boot", "20", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    record = json.loads(only_record(out).read_text())
    assert record["status"] == {**record["status"], "state": "partial", "eligible": False}
    assert record["predictions"]["missing"] == ids[:2] and record["predictions"]["n_empty"] == len(ids) - 2
