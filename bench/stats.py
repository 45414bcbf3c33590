"""Bootstrap confidence intervals and paired significance tests over studies.

Every function resamples *rows* of a scorer's per-study statistics table and asks the
scorer's own ``aggregate`` for the corpus values, so corpus-level metrics (corpus BLEU,
METEOR's summed statistics, F1 from label matrices) are recomputed properly for each
resample and no model is ever re-run. They are generic over columns: whatever keys
``aggregate`` returns get an interval / a p-value.

Determinism: each function draws from one ``numpy.random.Generator(PCG64(seed))`` in a
fixed order, so the same inputs and seed give the same numbers on every machine.

Missing values: a resample on which ``aggregate`` yields NaN for a column (e.g. an F1
whose support vanished) is left out of that column's percentile interval; an all-NaN
column gets ``(nan, nan)``. In approximate randomisation a NaN trial counts as "at least
as extreme" (conservative).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rrg_bench.errors import UsageError

if TYPE_CHECKING:  # pandas is imported lazily
    import pandas as pd

Aggregate = Callable[["pd.DataFrame"], dict[str, float]]
#: a table -> its ``aggregate`` of row selections (``Scorer.rows_aggregate``): the checking and
#: reshaping a scorer's ``aggregate`` does on every call is done once per table
Prepare = Callable[["pd.DataFrame"], Callable[[np.ndarray], dict[str, float]]]

#: deltas closer than this to the observed one count as ties ("at least as extreme")
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class PairedResult:
    """System B minus system A on the same studies.

    ``p_value`` is the two-sided paired-bootstrap p-value
    ``min(1, 2 * min(#{delta* <= 0} + 1, #{delta* >= 0} + 1) / (n_boot + 1))``: the smallest
    alpha at which the percentile interval of the resampled deltas excludes 0 (with the
    usual +1 correction, so it is never exactly 0).
    """

    a: float
    b: float
    delta: float
    ci95: tuple[float, float]
    p_value: float


def bootstrap_ci(aggregate: Aggregate, stats: pd.DataFrame, *, n_boot: int = 1000,
                 seed: int = 0, alpha: float = 0.05, prepare: Prepare | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval per column, resampling studies (rows) with replacement.

    ``prepare`` (a scorer's ``rows_aggregate``) gives the same draws faster; without it each
    resample's rows are selected and passed to ``aggregate``."""
    _check_counts(len(stats), n_boot)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    keys = list(aggregate(stats))
    on_rows = _on_rows(aggregate, stats, prepare)
    rng = _rng(seed)
    n = len(stats)
    draws = np.empty((n_boot, len(keys)))
    for i in range(n_boot):
        draws[i] = _values(on_rows(rng.integers(0, n, size=n)), keys)
    return {k: _percentile_interval(draws[:, j], alpha) for j, k in enumerate(keys)}


def paired_bootstrap(aggregate: Aggregate, stats_a: pd.DataFrame, stats_b: pd.DataFrame, *,
                     n_boot: int = 1000, seed: int = 0, prepare: Prepare | None = None) -> dict[str, PairedResult]:
    """Delta (B − A) with a 95% percentile interval and a two-sided p-value (see PairedResult).

    Both systems are resampled with the *same* study indices, which is what makes the test
    paired. ``stats_b`` is reordered to ``stats_a``'s study order first.
    """
    stats_a, stats_b = align_by_study(stats_a, stats_b)
    _check_counts(len(stats_a), n_boot)
    full_a, full_b = aggregate(stats_a), aggregate(stats_b)
    keys = list(full_a)
    on_rows_a, on_rows_b = _on_rows(aggregate, stats_a, prepare), _on_rows(aggregate, stats_b, prepare)
    rng = _rng(seed)
    n = len(stats_a)
    deltas = np.empty((n_boot, len(keys)))
    for i in range(n_boot):
        idx = rng.integers(0, n, size=n)
        deltas[i] = _values(on_rows_b(idx), keys) - _values(on_rows_a(idx), keys)
    out = {}
    for j, k in enumerate(keys):
        d = deltas[:, j]
        finite = d[~np.isnan(d)]
        below = int(np.count_nonzero(finite <= 0.0))
        above = int(np.count_nonzero(finite >= 0.0))
        p = min(1.0, 2.0 * (min(below, above) + 1) / (len(finite) + 1)) if len(finite) else math.nan
        out[k] = PairedResult(a=float(full_a[k]), b=float(full_b[k]),
                              delta=float(full_b[k]) - float(full_a[k]),
                              ci95=_percentile_interval(d, 0.05), p_value=p)
    return out


def approximate_randomisation(aggregate: Aggregate, stats_a: pd.DataFrame, stats_b: pd.DataFrame,
                              *, n_trials: int = 1000, seed: int = 0,
                              prepare: Prepare | None = None) -> dict[str, float]:
    """Two-sided p-value per column by swapping each study's A/B statistics with probability ½.

    p = (r + 1) / (n_trials + 1) where r counts trials whose |delta| is at least the
    observed |delta| (Noreen 1989; ties within ``TIE_TOLERANCE`` count).
    """
    import pandas as pd

    stats_a, stats_b = align_by_study(stats_a, stats_b)
    _check_counts(len(stats_a), n_trials)
    keys = list(aggregate(stats_a))
    observed = np.abs(_values(aggregate(stats_b), keys) - _values(aggregate(stats_a), keys))
    both = pd.concat([stats_a, stats_b])  # rows 0..n-1 are A, n..2n-1 are B
    on_rows = _on_rows(aggregate, both, prepare)
    n = len(stats_a)
    rows = np.arange(n)
    rng = _rng(seed)
    extreme = np.zeros(len(keys), dtype=np.int64)
    for _ in range(n_trials):
        swap = rng.random(n) < 0.5
        as_a = on_rows(np.where(swap, rows + n, rows))
        as_b = on_rows(np.where(swap, rows, rows + n))
        delta = np.abs(_values(as_b, keys) - _values(as_a, keys))
        extreme += (np.isnan(delta) | (delta >= observed - TIE_TOLERANCE)).astype(np.int64)
    return {k: float((extreme[j] + 1) / (n_trials + 1)) for j, k in enumerate(keys)}


def align_by_study(stats_a: pd.DataFrame, stats_b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables in A's study order; a clear error if the two runs scored different studies."""
    for name, s in (("A", stats_a), ("B", stats_b)):
        if s.index.has_duplicates:
            dup = s.index[s.index.duplicated()][0]
            raise UsageError(f"cannot compare: run {name} has study {dup!r} more than once")
    if len(stats_a) != len(stats_b) or not stats_a.index.equals(stats_b.index):
        only_a = stats_a.index.difference(stats_b.index)
        only_b = stats_b.index.difference(stats_a.index)
        if len(only_a) or len(only_b):
            raise UsageError(
                "cannot compare: the two runs scored different studies "
                f"({len(only_a)} only in A, e.g. {list(only_a[:3])}; "
                f"{len(only_b)} only in B, e.g. {list(only_b[:3])}); score both on the same split."
            )
        stats_b = stats_b.loc[stats_a.index]
    return stats_a, stats_b


def _on_rows(aggregate: Aggregate, stats: pd.DataFrame,
             prepare: Prepare | None) -> Callable[[np.ndarray], dict[str, float]]:
    if prepare is not None:
        return prepare(stats)
    return lambda rows: aggregate(stats.iloc[rows])


def _rng(seed: int) -> np.random.Generator:
    """The resampling generator of a run seed; a negative ``--seed`` is a valid run seed too (its
    64-bit two's complement seeds numpy, which takes only non-negative integers)."""
    return np.random.default_rng(seed if seed >= 0 else seed & 0xFFFF_FFFF_FFFF_FFFF)


def _values(result: dict[str, float], keys: list[str]) -> np.ndarray:
    try:
        return np.array([result[k] for k in keys], dtype=np.float64)
    except KeyError as exc:
        raise ValueError(f"aggregate returned no value for column {exc.args[0]!r} on a resample") from None


def _percentile_interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = draws[~np.isnan(draws)]
    if not len(finite):
        return (math.nan, math.nan)
    lo, hi = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(lo), float(hi))


def _check_counts(n_rows: int, n_draws: int) -> None:
    if n_rows == 0:
        raise ValueError("no studies to resample")
    if n_draws < 1:
        raise ValueError(f"the number of resamples must be positive, got {n_draws}")
