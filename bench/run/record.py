"""Stage 4 of a run: assemble the results record and publish it, append-only, in the run directory.

The record is named by its fingerprint — what was generated, which predictions, which studies,
which metric implementations, which resampling — so a rerun that computes the same thing finds
its record already there, and a different computation (``--limit 20``, another convention, a
machine without Java) gets a record of its own beside the others. None is ever replaced.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrg_bench.environment import environment_info, harness_info
from rrg_bench.hashing import sha256_file, sha256_json, sha256_text
from rrg_bench.predictions.external import LONG_REPORT_CHARS
from rrg_bench.predictions.jsonl import encode_line
from rrg_bench.records.io import publish_record_dir
from rrg_bench.records.runs import RECORDS_DIR
from rrg_bench.records.schema import RECORD_SCHEMA, PredictionsInfo, ResultsRecord, Status
from rrg_bench.run.score import ScoringOutcome, samples_frame

#: per-study texts and values of a record (report text: never copied to a board)
SAMPLES_FILE = "samples.parquet"


@dataclass
class Scored:
    """What was scored: the studies (in order), their hypotheses, and how they relate to the split."""

    study_ids: list[str]
    hypotheses: list[str]
    references: list[str]
    n_expected: int
    limit: int | None = None
    missing: Sequence[str] = ()
    extra: Sequence[str] = ()
    n_null: int = 0

    @property
    def sha256(self) -> str:
        """sha256 of exactly what was scored, in our JSONL encoding (= the file's for a full run)."""
        return sha256_text("".join(encode_line(s, h) for s, h in zip(self.study_ids, self.hypotheses)))


def predictions_info(scored: Scored, file_name: str) -> PredictionsInfo:
    n = len(scored.hypotheses)
    return PredictionsInfo(
        path=file_name, sha256=scored.sha256, n=n, n_empty=sum(1 for h in scored.hypotheses if not h.strip()),
        n_expected=scored.n_expected, coverage=n / scored.n_expected if scored.n_expected else 0.0,
        limit=scored.limit, missing=list(scored.missing), extra=list(scored.extra),
        n_long=sum(len(h) > LONG_REPORT_CHARS for h in scored.hypotheses), n_null=scored.n_null)


def status(info: PredictionsInfo, outcome: ScoringOutcome, ineligible: Sequence[str]) -> Status:
    reasons = list(ineligible)
    if info.limit is not None:
        reasons.append(f"--limit {info.limit}: not the full split")
    if info.coverage < 1.0 and info.limit is None:
        reasons.append(f"coverage {info.coverage:.4f} < 1 ({len(info.missing)} studies missing)")
    if info.extra:
        reasons.append(f"{len(info.extra)} predictions for ids outside the split were ignored")
    if outcome.unavailable:
        reasons.append(f"{len(outcome.unavailable)} of {len(outcome.requested)} requested metrics unavailable: "
                       + ", ".join(outcome.unavailable))
    warnings = list(outcome.warnings)
    if info.n_long:
        warnings.append(f"{info.n_long} reports are longer than {LONG_REPORT_CHARS:,} characters (scored as given; "
                        "a looping generator?)")
    if info.n_null:
        warnings.append(f"{info.n_null} predictions were null/NaN in the file and were scored as empty reports")
    complete = info.coverage >= 1.0 and info.limit is None and not info.extra
    return Status(state="complete" if complete else "partial", eligible=not reasons, reasons=reasons,
                  warnings=warnings, requested=list(outcome.requested))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stats_file_name(scorer_spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", scorer_spec).strip("_") + ".parquet"


def publish(run_dir: Path, *, generation_fp: str, dataset_identity: dict[str, Any],
            generator_block: dict[str, Any], run_block: dict[str, Any], scored: Scored, outcome: ScoringOutcome,
            started: float, device: str, ineligible: Sequence[str] = (),
            predictions_file: str = "predictions.jsonl") -> tuple[Path, ResultsRecord, bool]:
    """Write ``records/<fingerprint>/`` (statistics first, results.json last) unless it exists.

    Returns (results.json path, the record there, whether this call created it)."""
    info = predictions_info(scored, predictions_file)
    fingerprint = sha256_json({
        "generation": generation_fp, "predictions": info.sha256, "studies": sha256_json(scored.study_ids),
        "limit": scored.limit, "metrics": outcome.fingerprints, "unavailable": sorted(outcome.unavailable),
        "n_boot": run_block.get("n_boot"), "seed": run_block.get("seed")})
    created_record: list[ResultsRecord] = []

    def fill(tmp: Path) -> ResultsRecord:
        scores = {}
        for spec, stats in outcome.stats.items():
            rel = Path("scores") / stats_file_name(spec)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            stats.to_parquet(tmp / rel)
            scores[spec] = {"path": rel.as_posix(), "sha256": sha256_file(tmp / rel)}
        samples = samples_frame(scored.study_ids, scored.references, scored.hypotheses, outcome)
        samples.to_parquet(tmp / SAMPLES_FILE)
        record = ResultsRecord(
            schema_version=RECORD_SCHEMA, record_id=str(uuid.uuid4()), run_fingerprint=fingerprint,
            generation_fingerprint=generation_fp, created_at=_now(), duration_s=round(time.time() - started, 3),
            harness=harness_info(), environment=environment_info(device), dataset=dataset_identity,
            generator=generator_block, run=run_block, predictions=info, metrics=outcome.metrics,
            unavailable=outcome.unavailable, scores=scores, cache=outcome.cache,
            samples={"path": SAMPLES_FILE, "sha256": sha256_file(tmp / SAMPLES_FILE)},
            status=status(info, outcome, ineligible))
        created_record.append(record)
        return record

    path, created = publish_record_dir(Path(run_dir) / RECORDS_DIR / fingerprint[:16], fill)
    if created:
        return path, created_record[0], True
    from rrg_bench.records.io import load_record

    return path, load_record(path), False
