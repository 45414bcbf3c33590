"""Predictions files: torn-line recovery of our own files, strict validation of external ones."""

from __future__ import annotations

import json

import pytest

from rrg_bench.api.types import Generation, Study
from rrg_bench.errors import PredictionsError
from rrg_bench.predictions import (
    LONG_REPORT_CHARS,
    ExternalPrediction,
    PredictionsWriter,
    align,
    encode_line,
    read_external,
    recover,
    write_ordered,
)


def _studies(n: int) -> list[Study]:
    return [Study(f"s{i}", "test", f"ref {i}", "0" * 64) for i in range(n)]


def test_writer_then_recover_roundtrip(tmp_path):
    path = tmp_path / "p.jsonl"
    with PredictionsWriter(path) as w:
        w.write_batch([Generation("a", "x\ny"), Generation("b", "")])
    assert recover(path) == {"a": "x\ny", "b": ""}
    assert path.read_text(encoding="utf-8") == encode_line("a", "x\ny") + encode_line("b", "")


def test_recover_truncates_a_torn_tail(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(encode_line("a", "one") + '{"study_id": "b", "rep', encoding="utf-8")
    assert recover(path) == {"a": "one"}
    assert path.read_text(encoding="utf-8") == encode_line("a", "one")


def test_recover_refuses_damage_in_the_middle(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(encode_line("a", "one") + "garbage\n" + encode_line("b", "two"), encoding="utf-8")
    with pytest.raises(PredictionsError, match=r"p.jsonl:2: damaged line"):
        recover(path)


def test_write_ordered_is_atomic_and_ordered(tmp_path):
    path = tmp_path / "p.jsonl"
    write_ordered(path, {"b": "2", "a": "1"}, ["a", "b", "c"])
    assert path.read_text(encoding="utf-8") == encode_line("a", "1") + encode_line("b", "2")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"   \n", "the file is empty"),
        (b'{"study_id": "s0", "report": "x"}\nnot json\n', r"p.jsonl:2: not valid JSON"),
        (b'{"study_id": "s0", "text": "x"}\n', r"p.jsonl:1: missing field 'report'"),
        (b'{"study_id": "s0", "report": 3}\n', r"p.jsonl:1: field 'report' must be a string"),
        (b'{"study_id": "s0", "report": "ok"}\n{"study_id": "s1", "report": "caf\xe9"}\n',
         r"p.jsonl:2: not valid UTF-8"),
        (b'["s0", "x"]\n', r"p.jsonl:1: expected an object"),
    ],
)
def test_external_jsonl_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(PredictionsError, match=message):
        read_external(path)


def test_huge_report_is_read_as_it_is(tmp_path):
    """A looping generator's 200,000-character report is its output: scored (and counted), not refused."""
    path = tmp_path / "p.jsonl"
    report = "word " * (LONG_REPORT_CHARS * 10 // 5)
    path.write_text(encode_line("s7", report), encoding="utf-8")
    assert read_external(path)[0].report == report


def test_csv_and_json_inputs(tmp_path):
    csv_path = tmp_path / "p.csv"
    csv_path.write_text('dicom_id,report\ns0,"a, b"\ns1,\n', encoding="utf-8")
    got = read_external(csv_path, id_col="dicom_id")
    assert [(p.study_id, p.report, p.line) for p in got] == [("s0", "a, b", 2), ("s1", "", 3)]
    with pytest.raises(PredictionsError, match=r"p.csv:1: no column 'study_id'"):
        read_external(csv_path)
    js = tmp_path / "p.json"
    js.write_text(json.dumps([{"study_id": "s0", "report": None}]), encoding="utf-8")
    assert read_external(js)[0].report == ""


def test_align_joins_by_id_not_position():
    preds = [ExternalPrediction(sid, f"hyp {sid}", i) for i, sid in enumerate(["s2", "s0", "s1"], 1)]
    al = align(preds, _studies(3), source="f")
    assert al.hypotheses == ["hyp s0", "hyp s1", "hyp s2"] and al.complete


def test_align_lists_missing_extra_and_duplicates():
    mk = lambda sid, i: ExternalPrediction(sid, "", i)  # noqa: E731
    with pytest.raises(PredictionsError, match=r"duplicate study ids \(1: s0 \(lines 1 and 2\)\)"):
        align([mk("s0", 1), mk("s0", 2)], _studies(2), source="f")
    with pytest.raises(PredictionsError, match=r"missing predictions for 2: s1, s2.*ids not in the split \(1: zz\)"):
        align([mk("s0", 1), mk("zz", 2)], _studies(3), source="f")
    many = [mk(f"x{i}", i) for i in range(30)]
    with pytest.raises(PredictionsError, match=r"30: x0, .* x19 … and 10 more"):
        align(many + [mk("s0", 99)], _studies(1), source="f")
    al = align([mk("s0", 1), mk("zz", 2)], _studies(3), source="f", allow_partial=True)
    assert al.missing == ["s1", "s2"] and al.extra == ["zz"] and not al.complete
