"""The results record: the one file a score is quoted from.

A record is versioned (``schema_version``), validated on write and on load, and written
atomically (temp file + ``os.replace``) as the last step of a run, so its presence means
the run is complete. It carries everything needed to decide whether two numbers may be
compared: dataset identity and reference hashes, generator and checkpoint hashes, metric
implementations and conventions, environment, coverage and eligibility.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rrg_bench import RECORD_SCHEMA
from rrg_bench.errors import BenchError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricValue(_Strict):
    value: float
    ci95: tuple[float, float] | None = None
    n: int
    display: str
    convention: str
    higher_is_better: bool = True
    decimals: int = 4
    scorer: str  # canonical scorer spec, e.g. "nlg[tok=ptb]"
    metric_version: str
    ci_method: str = "bootstrap"
    impl: dict[str, Any] = Field(default_factory=dict)
    per_label: dict[str, dict[str, float]] | None = None


class PredictionsInfo(_Strict):
    path: str
    sha256: str
    n: int
    n_empty: int
    n_expected: int
    coverage: float
    limit: int | None = None
    missing: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list)


class Status(_Strict):
    state: Literal["complete", "partial"]
    eligible: bool
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ResultsRecord(_Strict):
    schema_version: str = RECORD_SCHEMA
    record_id: str
    run_fingerprint: str
    generation_fingerprint: str
    created_at: str
    duration_s: float
    harness: dict[str, Any]
    environment: dict[str, Any]
    dataset: dict[str, Any]
    generator: dict[str, Any]
    run: dict[str, Any]
    predictions: PredictionsInfo
    metrics: dict[str, MetricValue]
    unavailable: dict[str, str] = Field(default_factory=dict)
    scores: dict[str, dict[str, str]] = Field(default_factory=dict)
    cache: dict[str, dict[str, int]] = Field(default_factory=dict)
    status: Status


def write_record(record: ResultsRecord, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_record(path: Path) -> ResultsRecord:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: no results record here (was the run completed?)") from None
    except ValueError as exc:
        raise BenchError(f"{path}: not a valid JSON results record ({exc})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != RECORD_SCHEMA:
        raise BenchError(f"{path}: schema {version!r}, this harness reads {RECORD_SCHEMA!r}")
    try:
        return ResultsRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BenchError(f"{path}: invalid record at {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
