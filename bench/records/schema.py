"""The results record: the one file a score is quoted from.

A record is versioned (``schema_version``) and validated on write and on load. It carries
everything needed to decide whether two numbers may be compared: dataset identity and
reference hashes, generator and checkpoint hashes, metric implementations and conventions,
environment, coverage and eligibility — and, per scorer, the sha256 of the per-study
statistics every published value is recomputed from.

Schema 2 (this harness) adds what append-only records need: the scorer specs that were
requested (so "4 of 5 metrics unavailable" can be said), counts of odd-but-valid predictions,
and the per-study samples file. Schema-1 records (the first release) still load: the new
fields have defaults that are true of them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RECORD_SCHEMA = "bench.results/2"
#: schema versions this harness reads
READABLE_SCHEMAS = ("bench.results/1", RECORD_SCHEMA)


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
    #: reports longer than ``LONG_REPORT_CHARS`` (scored as they are; a looping generator shows here)
    n_long: int = 0
    #: reports given as null / NaN in an external file, scored as empty
    n_null: int = 0


class Status(_Strict):
    state: Literal["complete", "partial"]
    eligible: bool
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    #: the scorer specs asked for (suites expanded); empty in schema-1 records
    requested: list[str] = Field(default_factory=list)


class ResultsRecord(_Strict):
    schema_version: str = RECORD_SCHEMA
    record_id: str
    #: identity of this record's computation: generation, predictions, scored studies, metric
    #: fingerprints, resampling settings. Two records with the same value hold the same numbers.
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
    #: scorer spec -> {"path": relative path of its per-study statistics, "sha256": …}
    scores: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: {"path": "samples.parquet", "sha256": …}: per-study texts and values (never committed to a board)
    samples: dict[str, str] | None = None
    cache: dict[str, dict[str, int]] = Field(default_factory=dict)
    status: Status

    def status_line(self) -> str:
        """``complete, eligible`` / ``complete, 1 of 5 metrics unavailable, not eligible: …``."""
        words: list[str] = [self.status.state]
        if self.unavailable:
            requested = len(self.status.requested) or len(self.unavailable) + len(self.scores)
            words.append(f"{len(self.unavailable)} of {requested} metrics unavailable")
        words.append("eligible" if self.status.eligible else "not eligible")
        line = ", ".join(words)
        return line + (f": {'; '.join(self.status.reasons)}" if self.status.reasons else "")
