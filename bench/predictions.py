"""Predictions files: our own append-only JSONL, and other people's files to be scored.

Our writer appends one line per study and fsyncs per batch, so a run killed at any moment
loses at most the batch in flight and leaves at worst one torn last line, which the reader
drops on resume. External files (JSONL, JSON, CSV) are validated line by line: every
problem is reported with the file, line and study id, never silently skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from rrg_bench.errors import PredictionsError
from rrg_bench.api.types import Generation, Study

#: a report longer than this is almost certainly a bug (a whole log, a repeated loop)
MAX_REPORT_CHARS = 20_000
_LIST_LIMIT = 20


def encode_line(study_id: str, report: str) -> str:
    """The exact bytes of one prediction line: fixed key order, so resumed files are identical."""
    return json.dumps({"study_id": study_id, "report": report}, ensure_ascii=False) + "\n"


class PredictionsWriter:
    """Append-only JSONL writer; ``write_batch`` returns only after the data is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8", newline="\n")

    def write_batch(self, generations: Iterable[Generation]) -> None:
        self._fh.write("".join(encode_line(g.study_id, g.text) for g in generations))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "PredictionsWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recover(path: Path) -> dict[str, str]:
    """Read our own predictions file, truncating a torn last line left by a killed run.

    Returns study_id -> report in file order. A damaged line that is *not* the last one
    cannot come from an interrupted append, so it is an error rather than a repair.
    """
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):  # torn tail: no newline after the last record
        with open(path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        data = data[:keep]
    out: dict[str, str] = {}
    for lineno, raw in enumerate(data.splitlines(), 1):
        try:
            obj = json.loads(raw.decode("utf-8"))
            out[obj["study_id"]] = obj["report"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PredictionsError(
                f"{path}:{lineno}: damaged line inside the predictions file ({exc}); "
                "delete the run directory or rerun with --fresh"
            ) from None
    return out


def write_ordered(path: Path, predictions: dict[str, str], order: Sequence[str]) -> None:
    """Atomically (re)write ``path`` with the predictions of ``order`` in that order."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(encode_line(sid, predictions[sid]) for sid in order if sid in predictions))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- external files


@dataclass(frozen=True)
class ExternalPrediction:
    study_id: str
    report: str
    line: int  # 1-based line (JSONL/CSV) or item index (JSON) for error messages


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


def _field(obj: object, key: str, path: Path, where: str) -> str:
    if not isinstance(obj, dict):
        raise PredictionsError(f"{path}:{where}: expected an object with '{key}', got {type(obj).__name__}")
    if key not in obj:
        keys = ", ".join(map(str, obj)) or "none"
        raise PredictionsError(f"{path}:{where}: missing field '{key}' (fields present: {keys})")
    value = obj[key]
    if value is None:
        return ""
    if isinstance(value, (int, float)) and key != "report":
        return str(value)
    if not isinstance(value, str):
        raise PredictionsError(f"{path}:{where}: field '{key}' must be a string, got {type(value).__name__}")
    return value


def read_external(path: Path, *, id_col: str = "study_id", text_col: str = "report") -> list[ExternalPrediction]:
    """Read a predictions file (.jsonl, .json, .csv/.tsv) into (study_id, report) pairs."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such file")
    text = _decode(path)
    suffix = path.suffix.lower()
    out: list[ExternalPrediction] = []
    if suffix in {".csv", ".tsv"}:
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        for col in (id_col, text_col):
            if col not in (reader.fieldnames or []):
                raise PredictionsError(
                    f"{path}:1: no column '{col}' (columns: {', '.join(reader.fieldnames or [])}); "
                    "name the columns with --id-col / --text-col"
                )
        for row in reader:
            line = reader.line_num
            out.append(ExternalPrediction(_field(row, id_col, path, str(line)), row[text_col] or "", line))
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PredictionsError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if isinstance(data, dict):
            out = _read_rexrank_json(data, path, text_col)
        elif not isinstance(data, list):
            raise PredictionsError(f"{path}: expected a JSON list of objects with '{id_col}' and '{text_col}', "
                                   f"or ReXrank's object keyed by study id")
        for i, obj in enumerate(data if isinstance(data, list) else [], 1):
            where = f"item {i}"
            out.append(ExternalPrediction(_field(obj, id_col, path, where), _field(obj, text_col, path, where), i))
    else:
        for lineno, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                raise PredictionsError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            where = str(lineno)
            out.append(ExternalPrediction(_field(obj, id_col, path, where), _field(obj, text_col, path, where), lineno))
    if not out:
        raise PredictionsError(f"{path}: no predictions found")
    for p in out:
        if not p.study_id.strip():
            raise PredictionsError(f"{path}:{p.line}: empty study id")
        if len(p.report) > MAX_REPORT_CHARS:
            raise PredictionsError(
                f"{path}:{p.line}: report for study {p.study_id} has {len(p.report):,} characters "
                f"(limit {MAX_REPORT_CHARS:,}); is the generator looping? Truncate it or fix the generator"
            )
    return out


#: ReXrank's submission format: {study_id: {..., "report": ground truth, "model_prediction": text}}
REXRANK_PREDICTION_KEY = "model_prediction"


def _read_rexrank_json(data: dict, path: Path, text_col: str) -> list[ExternalPrediction]:
    """ReXrank's JSON (an object keyed by study id). Its ``report`` field is the *ground truth*,
    so the default text column means ``model_prediction`` here; another ``--text-col`` is honoured."""
    key = REXRANK_PREDICTION_KEY if text_col == "report" else text_col
    return [ExternalPrediction(str(sid), _field(obj, key, path, f"study {sid}"), i)
            for i, (sid, obj) in enumerate(data.items(), 1)]


def _listing(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_LIST_LIMIT])
    more = f" … and {len(ids) - _LIST_LIMIT} more" if len(ids) > _LIST_LIMIT else ""
    return f"{len(ids)}: {shown}{more}"


@dataclass
class Alignment:
    """Hypotheses joined to studies by id (never by line position)."""

    studies: list[Study]
    hypotheses: list[str]
    missing: list[str]
    extra: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.extra


def align(predictions: Sequence[ExternalPrediction], studies: Sequence[Study], *, source: str,
          allow_partial: bool = False) -> Alignment:
    """Join predictions to the split's studies; duplicates are always an error."""
    seen: dict[str, int] = {}
    dups: list[str] = []
    for p in predictions:
        if p.study_id in seen and p.study_id not in dups:
            dups.append(p.study_id)
        seen.setdefault(p.study_id, p.line)
    if dups:
        raise PredictionsError(f"{source}: duplicate study ids ({_listing(dups)}); keep one prediction per study")
    by_id = {p.study_id: p.report for p in predictions}
    wanted = {s.study_id for s in studies}
    missing = [s.study_id for s in studies if s.study_id not in by_id]
    extra = [p.study_id for p in predictions if p.study_id not in wanted]
    if (missing or extra) and not allow_partial:
        parts = []
        if missing:
            parts.append(f"missing predictions for {_listing(missing)}")
        if extra:
            parts.append(f"ids not in the split ({_listing(extra)})")
        raise PredictionsError(
            f"{source}: {'; '.join(parts)}. Check --dataset/--split, or pass --allow-partial "
            "to score the overlap (the record is then marked ineligible)"
        )
    kept = [s for s in studies if s.study_id in by_id]
    if not kept:
        raise PredictionsError(f"{source}: no prediction matches a study of the split")
    return Alignment(kept, [by_id[s.study_id] for s in kept], missing, extra)
