"""A record together with where it was read from, and its hash-pinned per-study statistics.

Compare, table and leaderboard all read records through this module, so "which file, which
statistics, checked against which hash" is decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rrg_bench.errors import BenchError
from rrg_bench.hashing import sha256_file
from rrg_bench.records.schema import ResultsRecord

if TYPE_CHECKING:
    import pandas as pd


def system_label(generator: dict[str, object], fallback: str = "external") -> str:
    """``display_name`` (else ``name``); an unofficial re-implementation always says so."""
    name = str(generator.get("display_name") or generator.get("name") or fallback)
    if generator.get("unofficial") and "unofficial" not in name.lower():
        name += " (unofficial)"
    return name


class StatsUnavailable(BenchError):
    """A record's per-study statistics file is not where its ``scores`` block says."""


@dataclass(frozen=True)
class LoadedRecord:
    """A validated record. Statistics paths in ``record.scores`` are relative to ``base_dir``
    (the record's own directory unless this is a merged view of several records)."""

    path: Path
    record: ResultsRecord
    base_dir: Path | None = None
    #: the record files this view was built from (one, or several for a run's union view)
    sources: tuple[Path, ...] = field(default_factory=tuple)
    #: which record of a run was read and why, for the user ("fullest complete of 3 records")
    note: str = ""

    @property
    def label(self) -> str:
        """The system's name as tables show it: its display name, marked when it is unofficial."""
        return system_label(self.record.generator, fallback=self.path.parent.name)

    @property
    def short_fingerprint(self) -> str:
        return self.record.run_fingerprint[:12]

    def stats_candidates(self, relative: str) -> list[Path]:
        """Where a statistics file may live: relative to the record (a run's record directory), or
        in the companion directory ``<record stem>/`` that ``bench leaderboard add`` writes."""
        if self.base_dir is not None:
            return [self.base_dir / relative]
        return [self.path.parent / relative, self.path.with_suffix("") / relative]


def locate_stats(loaded: LoadedRecord, scorer_spec: str) -> Path:
    """The statistics file of one scorer, its sha256 checked against the record."""
    entry = loaded.record.scores.get(scorer_spec)
    if entry is None or "path" not in entry:
        raise StatsUnavailable(f"{loaded.path}: the record lists no per-study statistics for scorer {scorer_spec!r}")
    for candidate in loaded.stats_candidates(entry["path"]):
        if candidate.is_file():
            expected = entry.get("sha256")
            if expected and sha256_file(candidate) != expected:  # never silently skipped: data integrity
                raise BenchError(
                    f"{candidate}: sha256 differs from the one in {loaded.path}; the statistics were changed or "
                    "belong to another run — restore the run directory or re-add the record"
                )
            return candidate
    tried = " or ".join(str(c) for c in loaded.stats_candidates(entry["path"]))
    raise StatsUnavailable(
        f"{loaded.path}: per-study statistics for {scorer_spec!r} not found (looked for {tried}); "
        "significance tests need the run directory (runs/…/records/…/scores/) or a record added with "
        "`bench leaderboard add`, which keeps them"
    )


def load_stats(loaded: LoadedRecord, scorer_spec: str) -> pd.DataFrame:
    import pandas as pd

    path = locate_stats(loaded, scorer_spec)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise StatsUnavailable(f"{path}: cannot read per-study statistics ({type(exc).__name__}: {exc})") from None
