"""May two numbers share a column? The rule compare, tables and boards all apply.

Two values are comparable only when they were made by the same scorer spec, under the same
convention and metric version; implementation facts (``impl``) must match too unless a board
explicitly ignores one (e.g. a Java patch version).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rrg_bench.records.schema import MetricValue


def metric_signature(metric: MetricValue, ignore_impl: Iterable[str] = ()) -> dict[str, Any]:
    """What must be equal for two values to be compared or put in one column."""
    ignored = set(ignore_impl)
    return {"scorer": metric.scorer, "convention": metric.convention, "metric_version": metric.metric_version,
            "impl": {k: v for k, v in sorted(metric.impl.items()) if k not in ignored}}


def signature_differences(a: MetricValue, b: MetricValue, *, include_impl: bool = True,
                          ignore_impl: Iterable[str] = ()) -> list[str]:
    """Human-readable list of what differs, e.g. ``["metric_version '1' vs '2'"]``."""
    sa, sb = metric_signature(a, ignore_impl), metric_signature(b, ignore_impl)
    diffs = [f"{key} {sa[key]!r} vs {sb[key]!r}" for key in ("scorer", "convention", "metric_version")
             if sa[key] != sb[key]]
    if include_impl:
        for key in sorted(set(sa["impl"]) | set(sb["impl"])):
            if sa["impl"].get(key) != sb["impl"].get(key):
                diffs.append(f"impl.{key} {sa['impl'].get(key)!r} vs {sb['impl'].get(key)!r}")
    return diffs


def metric_family(metric_id: str) -> str:
    """``bleu4[tok=ptb]`` -> ``bleu4``: the same quantity under any convention."""
    return metric_id.split("[", 1)[0]
