"""Per-study samples of a record: which studies to look at, and their texts beside their values.

``samples.parquet`` lives in the record's directory (report text never goes to a board); this
module finds it for a record or a run, checks it against the record's hash, and picks the worst
studies of a metric — the first thing one does after a disappointing number.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rrg_bench.errors import BenchError, UsageError
from rrg_bench.hashing import sha256_file
from rrg_bench.records import LoadedRecord, load_any

if TYPE_CHECKING:
    import pandas as pd


def read_samples(source: Path | str | LoadedRecord) -> tuple[LoadedRecord, pd.DataFrame]:
    """The samples of a record file or of a run's fullest complete record."""
    import pandas as pd

    loaded = source if isinstance(source, LoadedRecord) else load_any(source)
    entry = loaded.record.samples
    if not entry:
        raise BenchError(f"{loaded.path}: this record has no per-study samples (records made before rrg-bench 0.2 "
                         "do not); score the predictions again to get them")
    path = loaded.path.parent / entry["path"]
    if not path.is_file():
        raise BenchError(f"{path}: the record's samples file is missing (was the record copied without it?)")
    if sha256_file(path) != entry.get("sha256"):
        raise BenchError(f"{path}: sha256 differs from the one in {loaded.path}; the samples were changed")
    return loaded, pd.read_parquet(path)


def metric_column(loaded: LoadedRecord, frame: pd.DataFrame, metric: str) -> str:
    """The samples column of ``metric``: an exact column id, or a family such as ``bleu4``."""
    if metric in frame.columns:
        return metric
    matches: list[str] = [c for c in frame.columns if c.split("[", 1)[0] == metric and c in loaded.record.metrics]
    if len(matches) == 1:
        return matches[0]
    per_study = [c for c in frame.columns if c in loaded.record.metrics]
    if not matches:
        raise UsageError(f"no per-study values for {metric!r} in {loaded.path}; available: {', '.join(per_study)}")
    raise UsageError(f"{metric!r} matches {', '.join(matches)}; name one of them")


def worst(loaded: LoadedRecord, frame: pd.DataFrame, metric: str, n: int) -> pd.DataFrame:
    """The ``n`` studies with the worst per-study value of ``metric`` (ties: study id order)."""
    if n <= 0:
        raise UsageError(f"-n must be a positive number of studies, got {n}")
    column = metric_column(loaded, frame, metric)
    metric_value = loaded.record.metrics.get(column)
    higher_is_better = metric_value.higher_is_better if metric_value is not None else True  # e.g. agreement
    ranked = frame.sort_values([column, frame.index.name or "study_id"] if frame.index.name else [column],
                               ascending=[higher_is_better, True] if frame.index.name else higher_is_better,
                               kind="mergesort")
    return ranked.head(n)
