"""Which record of a run a command reads.

A run directory keeps every record ever made from its predictions (``records/<fp>/``): a full
run, a ``--limit 20`` rerun, a re-score under another convention. Commands that take "a run"
read the fullest complete record by default and say which one; ``bench table`` can show the
union of everything computed on the full split.
"""

from __future__ import annotations

from pathlib import Path

from rrg_bench.errors import BenchError
from rrg_bench.records.io import RECORD_FILE, load_record
from rrg_bench.records.loaded import LoadedRecord
from rrg_bench.records.schema import ResultsRecord

RECORDS_DIR = "records"


def record_files(run_dir: Path) -> list[Path]:
    """Every record of a run directory (and a first-release ``results.json`` beside the predictions)."""
    run_dir = Path(run_dir)
    found = sorted((run_dir / RECORDS_DIR).glob(f"*/{RECORD_FILE}")) if (run_dir / RECORDS_DIR).is_dir() else []
    legacy = run_dir / RECORD_FILE
    return found + ([legacy] if legacy.is_file() else [])


def is_full(record: ResultsRecord) -> bool:
    """Complete over the whole split: no limit, no missing or extra study."""
    p = record.predictions
    return record.status.state == "complete" and p.limit is None and p.coverage >= 1.0 and not p.extra


def _rank(lr: LoadedRecord) -> tuple[bool, int, str]:
    return is_full(lr.record), len(lr.record.metrics), lr.record.created_at


def load_any(path: Path | str) -> LoadedRecord:
    """A record file, a record directory, or a run directory (its fullest complete record)."""
    path = Path(path)
    if path.is_file():
        return LoadedRecord(path, load_record(path), sources=(path,))
    if not path.is_dir():
        raise BenchError(f"{path}: no such record file or run directory")
    files = record_files(path)
    if not files:
        raise BenchError(f"{path}: no results record here (was the run scored? `bench run` / `bench score` write one)")
    loaded = [LoadedRecord(f, load_record(f), sources=(f,)) for f in files]
    best = max(loaded, key=_rank)
    kind = "fullest complete" if is_full(best.record) else "latest (none is complete over the full split)"
    note = f"read {best.path}" + (f" ({kind} of {len(loaded)} records)" if len(loaded) > 1 else "")
    return LoadedRecord(best.path, best.record, sources=(best.path,), note=note)


def union_view(run_dir: Path | str) -> LoadedRecord:
    """One row's worth of metrics from every complete full-split record of a run (same predictions).

    A metric computed by several records is taken from the newest; the union never mixes
    predictions (all records of a run directory score the same, tamper-checked predictions).
    """
    run_dir = Path(run_dir)
    if not (run_dir / RECORDS_DIR).is_dir():
        return load_any(run_dir)
    loaded = sorted((LoadedRecord(f, load_record(f)) for f in record_files(run_dir)),
                    key=lambda lr: lr.record.created_at)
    full = [lr for lr in loaded if is_full(lr.record)]
    if not full:
        return load_any(run_dir)
    base = full[-1].record.model_copy(deep=True)
    base.metrics, base.scores, base.unavailable = {}, {}, {}
    for lr in full:
        if lr.record.predictions.sha256 != base.predictions.sha256:
            continue
        rel = lr.path.parent.relative_to(run_dir)
        base.metrics.update(lr.record.metrics)
        base.scores.update({spec: {**entry, "path": (rel / entry["path"]).as_posix()}
                            for spec, entry in lr.record.scores.items()})
    used = tuple(lr.path for lr in full if lr.record.predictions.sha256 == base.predictions.sha256)
    note = f"read the union of {len(used)} complete records of {run_dir}" if len(used) > 1 else f"read {used[0]}"
    return LoadedRecord(run_dir / RECORDS_DIR / "union", base, base_dir=run_dir, sources=used, note=note)
