"""The scorer contract: per-study statistics first, corpus values and CIs from them.

Why per-study statistics: bootstrap CIs, paired significance tests and shard merges must
never re-run a model. A scorer returns (a) the official corpus values, computed exactly as
the upstream implementation does, and (b) a table of per-study sufficient statistics from
which ``aggregate`` recomputes those values for any resample of studies. A parity test
shows ``aggregate(stats) == values`` on the full set wherever the statistic allows it;
where it does not (METEOR's jar aggregate), ``ci_method`` says so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from rrg_bench.api.params import NoParams, validated
from rrg_bench.errors import UsageError

if TYPE_CHECKING:  # pandas is imported lazily at scoring time
    import numpy as np
    import pandas as pd

#: ``aggregate`` of a row selection of one statistics table, given the row positions (repeats allowed)
RowsAggregate = Callable[["np.ndarray"], dict[str, float]]


@dataclass(frozen=True)
class Column:
    """One reported number. ``id`` is canonical and carries the convention."""

    id: str
    display: str
    convention: str
    higher_is_better: bool = True
    decimals: int = 4


@dataclass
class ScoringContext:
    """What the runner lends a scorer: the annotation cache, device, progress reporting, and
    which dataset is being scored (conventions such as ``nlg[conv=r2gen]`` rebuild a model's
    training vocabulary from the dataset's train references)."""

    device: str = "cpu"
    batch_size: int = 16
    cache: Any = None  # bench.cache.AnnotationCache | None
    progress: Callable[[str, int], Any] | None = None  # (description, total) -> advance(n)
    dataset: str | None = None  # registry name of the evaluated dataset, e.g. "iu_xray/r2gen"
    #: the dataset's train-split references, read (hash-checked) on the first call; None when
    #: scoring outside a dataset or the dataset has no train split
    train_references: Callable[[], Sequence[str]] | None = None
    #: worker processes a scorer may spread its work over (``--workers``); None = the scorer's default.
    #: Never changes a value: a scorer that shards must merge exactly as one process would.
    workers: int | None = None


@dataclass
class ScoreResult:
    values: dict[str, float]
    stats: pd.DataFrame  # index: study_id, in the order given to ``score``
    #: label -> {precision, recall, f1, support}; the breakdown behind every column of the scorer,
    #: so the runner attaches it to each of them (boards draw heatmaps from it)
    per_label: dict[str, dict[str, float]] | None = None
    ci_method: str = "bootstrap"
    #: column id -> why that column could not be computed here (the others were); recorded as unavailable
    unavailable: dict[str, str] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    notes: list[str] = field(default_factory=list)


class Scorer(ABC):
    """Base class of every registered scorer (built-in or plugin)."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, **params: Any) -> None:
        self.params = validated(self.Params, params, f"metric {self.name!r}")

    @property
    def spec(self) -> str:
        """Canonical spec string, e.g. ``nlg[tok=ptb]`` (all params, sorted)."""
        items = sorted(self.params.model_dump(mode="json").items())
        return self.name + ("[" + ",".join(f"{k}={v}" for k, v in items) + "]" if items else "")

    @abstractmethod
    def columns(self) -> list[Column]:
        """The columns this scorer reports, in display order."""

    def unavailable_reason(self) -> str | None:
        """None if the scorer can run here; else what is missing and how to get it."""
        return None

    def impl(self) -> dict[str, Any]:
        """Implementation facts for the record: packages and versions, checkpoint sha256."""
        return {}

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "params": self.params.model_dump(mode="json"), "impl": self.impl()}

    @abstractmethod
    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        """Score aligned lists (same length, same order)."""

    def checked_count(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str], *,
                      unavailable: type[Exception] | None = None) -> int:
        """The number of studies, once the lists are aligned and not empty; with ``unavailable`` (e.g.
        ``WeightsUnavailable``), also raise that error with ``unavailable_reason()`` if it cannot run here.

        One place for the checks every ``score`` starts with, so each scorer refuses the same inputs
        with the same words."""
        n = len(study_ids)
        if not (n == len(hyps) == len(refs)):
            raise ValueError(f"{self.name}: {n} ids, {len(hyps)} hypotheses, {len(refs)} references")
        if n == 0:
            raise UsageError(f"metric {self.name!r}: there are no studies to score")
        reason = self.unavailable_reason() if unavailable is not None else None
        if unavailable is not None and reason is not None:
            raise unavailable(reason)
        return n

    @abstractmethod
    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        """Corpus values from per-study statistics (any subset or resample of rows)."""

    def rows_aggregate(self, stats: pd.DataFrame) -> RowsAggregate:
        """``aggregate`` of row selections of ``stats``, for loops that resample it a thousand times
        (bootstrap CIs, paired tests): ``f(rows)`` must equal ``aggregate(stats.iloc[rows])`` bit for bit.

        Why a scorer may override it: most of an ``aggregate`` call can be checking and reshaping the
        table, the same work for every resample; an override does it once and keeps per resample only
        what depends on the rows (tests/unit/test_rows_aggregate.py holds every override to the
        equality, and record checks recompute CIs with ``aggregate`` itself). The default selects the rows and
        calls ``aggregate``."""
        return lambda rows: self.aggregate(stats.iloc[rows])

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame | None:
        """Per-study values a person can read (``samples.parquet``), derived from the statistics.

        Index: study id (as ``stats``). Columns: a column id for the per-study version of a reported
        column (e.g. ``bleu4[tok=ptb]``: sentence BLEU-4), or ``<spec>:<name>`` for details such as
        labels. None: this scorer has no per-study view."""
        return None
