"""Recompute a record's published values from its hash-pinned per-study statistics.

Why: a record is a JSON file anyone can edit. A board must never show a number that does not
follow from the statistics it ships, so ``bench leaderboard add`` and ``bench leaderboard check``
recompute every value (and its bootstrap CI, from the recorded seed and resample count) with the
scorer's own ``aggregate`` and refuse any difference, naming the record and the metric.
"""

from __future__ import annotations

import math
from collections import defaultdict

from rrg_bench.records.loaded import LoadedRecord, StatsUnavailable, load_stats

#: recomputation is the same arithmetic on the same bytes; anything beyond rounding noise is an edit
TOLERANCE = 1e-9


def _differs(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return not (math.isnan(a) and math.isnan(b))
    return abs(a - b) > TOLERANCE * max(1.0, abs(a), abs(b))


def recompute_problems(loaded: LoadedRecord, *, check_ci: bool = True) -> list[str]:
    """Every metric of the record whose value or CI does not follow from its statistics (empty: all do)."""
    from rrg_bench.specs import build_scorer
    from rrg_bench.stats import bootstrap_ci

    record, where = loaded.record, loaded.path
    by_scorer: dict[str, list[str]] = defaultdict(list)
    for mid, metric in record.metrics.items():
        by_scorer[metric.scorer].append(mid)
    problems: list[str] = []
    for spec, mids in by_scorer.items():
        try:
            stats = load_stats(loaded, spec)
        except StatsUnavailable as exc:
            problems.append(f"{where}: {', '.join(mids)}: cannot be recomputed ({exc})")
            continue
        aggregate = build_scorer(spec).aggregate
        values = aggregate(stats)
        n_boot, seed = record.run.get("n_boot"), record.run.get("seed", 0)
        # the defining path (aggregate of each resample), not the scorer's faster rows_aggregate that
        # wrote the record: a checker should not share the code it checks
        cis = (bootstrap_ci(aggregate, stats, n_boot=int(n_boot), seed=int(seed))
               if check_ci and n_boot and any(record.metrics[m].ci95 for m in mids) else {})
        for mid in mids:
            metric = record.metrics[mid]
            if mid not in values or _differs(metric.value, float(values[mid])):
                got = values.get(mid, "nothing")
                problems.append(f"{where}: {mid} is {metric.value!r} in the record but its per-study statistics "
                                f"give {got!r}")
            elif metric.ci95 and mid in cis and any(_differs(a, float(b)) for a, b in zip(metric.ci95, cis[mid])):
                problems.append(f"{where}: {mid} CI {list(metric.ci95)} in the record but the statistics give "
                                f"{[float(c) for c in cis[mid]]} (n_boot={n_boot}, seed={seed})")
    return problems
