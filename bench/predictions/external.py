"""Other people's predictions files (JSONL, JSON, CSV/TSV, ReXrank JSON), read strictly.

Every problem is reported with the file, line and study id, never silently skipped or
repaired: an unquoted comma that splits a CSV row, a short row, a duplicated column, a lone
surrogate. Odd but valid input is scored as it is and counted (a null or NaN report is an empty
report; a 200,000-character report from a looping generator is still that generator's output).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrg_bench.datasets.rexrank_json import prediction_key, rexrank_studies
from rrg_bench.errors import PredictionsError

#: reports longer than this are scored but counted in the record (a looping generator shows up)
LONG_REPORT_CHARS = 20_000


@dataclass(frozen=True)
class ExternalPrediction:
    study_id: str
    report: str
    line: int  # 1-based line (JSONL/CSV) or item index (JSON) for error messages
    null: bool = False  # the file gave null / NaN: scored as an empty report


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise PredictionsError(f"{path}: the file is empty; expected one prediction per study")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PredictionsError(
            f"{path}:{line}: not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "re-save the file as UTF-8"
        ) from None


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _field(obj: object, key: str, path: Path, where: str) -> str | None:
    """The field's text; None for null/NaN (the caller decides what an absent value means)."""
    if not isinstance(obj, dict):
        raise PredictionsError(f"{path}:{where}: expected an object with '{key}', got {type(obj).__name__}")
    if key not in obj:
        keys = ", ".join(map(str, obj)) or "none"
        raise PredictionsError(f"{path}:{where}: missing field '{key}' (fields present: {keys})")
    value = obj[key]
    if _is_null(value):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "report":
        return str(value)
    if not isinstance(value, str):
        raise PredictionsError(f"{path}:{where}: field '{key}' must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PredictionsError(f"{path}:{where}: field '{key}' holds an invalid character ({exc.reason}, e.g. a lone "
                               "surrogate \\ud800 from a broken \\u escape); fix the file") from None
    return value


def _prediction(obj: object, id_col: str, text_col: str, path: Path, where: str, line: int) -> ExternalPrediction:
    study_id = _field(obj, id_col, path, where)
    if study_id is None or not study_id.strip():
        raise PredictionsError(f"{path}:{where}: empty study id")
    report = _field(obj, text_col, path, where)
    return ExternalPrediction(study_id, report or "", line, null=report is None)


def _read_csv(text: str, path: Path, id_col: str, text_col: str, delimiter: str) -> list[ExternalPrediction]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise PredictionsError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    dups = sorted({c for c in header if header.count(c) > 1})
    if dups:
        raise PredictionsError(f"{path}:1: column(s) {', '.join(dups)} appear more than once in the header; "
                               "rename them so each column is named once")
    for col in (id_col, text_col):
        if col not in header:
            raise PredictionsError(f"{path}:1: no column '{col}' (columns: {', '.join(header)}); "
                                   "name the columns with --id-col / --text-col")
    out = []
    for line, row in rows:
        if not row:
            continue
        if len(row) != len(header):
            raise PredictionsError(
                f"{path}:{line}: {len(row)} fields, the header has {len(header)}; a report with a comma must be "
                "quoted (\"...\"), as csv writers do")
        out.append(_prediction(dict(zip(header, row)), id_col, text_col, path, str(line), line))
    return out


def _read_parquet(path: Path, id_col: str, text_col: str) -> list[ExternalPrediction]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise PredictionsError(f"{path}: not a readable parquet file ({exc})") from None
    for col in (id_col, text_col):
        if col not in table.column_names:
            raise PredictionsError(f"{path}: no column '{col}' (columns: {', '.join(table.column_names)}); "
                                   "name the columns with --id-col / --text-col")
    out = _read_table(table.select([id_col, text_col]).to_pylist(), str(path), id_col, text_col)
    if not out:
        raise PredictionsError(f"{path}: no predictions found")
    return out


def _read_json(text: str, path: Path, id_col: str, text_col: str) -> list[ExternalPrediction]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PredictionsError(f"{path}:{getattr(exc, 'lineno', 1)}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        return _rexrank_predictions(data, path, text_col)
    if not isinstance(data, list):
        raise PredictionsError(f"{path}: expected a JSON list of objects with '{id_col}' and '{text_col}', "
                               f"or ReXrank's object keyed by study id")
    return [_prediction(obj, id_col, text_col, path, f"item {i}", i) for i, obj in enumerate(data, 1)]


def _read_jsonl(text: str, path: Path, id_col: str, text_col: str) -> list[ExternalPrediction]:
    out = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise PredictionsError(f"{path}:{lineno}: not valid JSON ({exc})") from None
        out.append(_prediction(obj, id_col, text_col, path, str(lineno), lineno))
    return out


def _read_table(rows: list[dict[str, Any]], where: str, id_col: str, text_col: str) -> list[ExternalPrediction]:
    """Rows of a parquet file or a Hugging Face dataset (row numbers from 1)."""
    return [_prediction(row, id_col, text_col, Path(where), f"row {i}", i) for i, row in enumerate(rows, 1)]


def read_hf(spec: str, *, id_col: str = "study_id", text_col: str = "report") -> list[ExternalPrediction]:
    """Predictions from ``hf:ID_OR_PATH[:split]`` (a datasets directory, a parquet file or a Hub id)."""
    from rrg_bench import hf

    source = hf.parse(spec)
    data = hf.load(source)
    hf.columns_of(data, source, id_col, text_col)
    out = _read_table(data.select_columns([id_col, text_col]).to_list(), str(source), id_col, text_col)
    if not out:
        raise PredictionsError(f"{source}: no predictions found")
    return out


def read_external(path: Path | str, *, id_col: str = "study_id", text_col: str = "report") -> list[ExternalPrediction]:
    """Read predictions (.jsonl, .json, .csv/.tsv, .parquet, or ``hf:ID_OR_PATH[:split]``) into
    (study_id, report) pairs."""
    if str(path).startswith("hf:"):
        return read_hf(str(path), id_col=id_col, text_col=text_col)
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path, id_col, text_col)
    text = _decode(path)
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        out = _read_csv(text, path, id_col, text_col, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".json":
        out = _read_json(text, path, id_col, text_col)
    else:
        out = _read_jsonl(text, path, id_col, text_col)
    if not out:
        raise PredictionsError(f"{path}: no predictions found")
    return out


def _rexrank_predictions(data: dict[str, Any], path: Path, text_col: str) -> list[ExternalPrediction]:
    """ReXrank's JSON, read by ``rrg_bench.datasets.rexrank_json`` (its ``report`` field is the ground
    truth, so the default text column means ``model_prediction``); each study's text through ``_field``."""
    key = prediction_key(text_col)
    out = []
    for i, (sid, obj) in enumerate(rexrank_studies(data, path, required=(key,), error=PredictionsError).items(), 1):
        report = _field(obj, key, path, f"study {sid}")
        out.append(ExternalPrediction(str(sid), report or "", i, null=report is None))
    return out
