"""Tolerances and the regression decision of ``bench compare``: the gate a model repository's CI runs.

A tolerance is the largest drop (absolute, in the metric's units) a metric may show before the
gate fails; ``--fail-on significant`` additionally requires the paired bootstrap to call the
drop significant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rrg_bench.compare import ALPHA, Comparison, MetricDelta
from rrg_bench.errors import BenchError, RegressionFound, UsageError
from rrg_bench.records import StatsUnavailable

FailOn = Literal["any", "significant"]
FAIL_ON: tuple[str, ...] = ("any", "significant")


@dataclass(frozen=True)
class Tolerances:
    """Maximum allowed drop (absolute, in the metric's units) per metric id or glob.

    An exact metric id wins; otherwise the first matching glob in file order; otherwise
    ``default``. Globs use only ``*`` and ``?`` as wildcards, because metric ids contain
    literal brackets (``bleu4[tok=ptb]``).
    """

    rules: tuple[tuple[str, float], ...] = ()
    default: float = 0.0
    source: str = "(no tolerance file: any drop counts)"

    def for_metric(self, metric_id: str) -> float:
        for pattern, value in self.rules:
            if pattern == metric_id:
                return value
        for pattern, value in self.rules:
            if ("*" in pattern or "?" in pattern) and _glob(pattern).fullmatch(metric_id):
                return value
        return self.default


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern))


def load_tolerances(path: Path | str) -> Tolerances:
    """Read ``tol.yaml``: ``{default: 0.0, metrics: {id-or-glob: max_drop}}`` or a flat mapping."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: tolerance file not found") from None
    except yaml.YAMLError as exc:
        raise BenchError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a mapping of metric id (or glob) to maximum allowed drop")
    default = data.pop("default", 0.0)
    rules_obj = data.pop("metrics", None)
    if rules_obj is None:
        rules_obj = data
    elif data:
        raise BenchError(f"{path}: unknown top-level keys {sorted(data)}; expected 'default' and 'metrics'")
    if not isinstance(rules_obj, dict):
        raise BenchError(f"{path}: 'metrics' must map metric ids (or globs) to maximum allowed drops")
    rules = []
    for key, value in [("default", default), *rules_obj.items()]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise BenchError(f"{path}: tolerance for {key!r} must be a non-negative number, got {value!r}")
        if key != "default":
            rules.append((str(key), float(value)))
    return Tolerances(tuple(rules), float(default), str(path))


@dataclass(frozen=True)
class Regression:
    delta: MetricDelta
    tolerance: float
    reason: str


def find_regressions(comparison: Comparison, tolerances: Tolerances, fail_on: FailOn,
                     alpha: float = ALPHA) -> list[Regression]:
    """``any``: drop beyond tolerance. ``significant``: that, and paired-bootstrap p < alpha."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}; got {fail_on!r}")
    found = []
    for d in comparison.deltas:
        tol = tolerances.for_metric(d.metric_id)
        if not d.drop > tol:
            continue
        if fail_on == "significant":
            if d.p_bootstrap is None:
                raise StatsUnavailable(
                    f"--fail-on significant needs per-study statistics for {d.metric_id!r}; "
                    + "; ".join(n for n in comparison.notes if "no paired test" in n)
                )
            if not d.significant(alpha):
                continue
            reason = f"dropped {d.drop:.{d.decimals + 2}f} > tolerance {tol:g}, p={d.p_bootstrap:.4f} < {alpha:g}"
        else:
            reason = f"dropped {d.drop:.{d.decimals + 2}f} > tolerance {tol:g}"
        found.append(Regression(d, tol, reason))
    return found


def raise_on_regressions(regressions: Sequence[Regression], comparison: Comparison) -> None:
    if regressions:
        names = "; ".join(f"{r.delta.metric_id} {r.reason}" for r in regressions)
        raise RegressionFound(f"regression in {comparison.new.path} vs {comparison.base.path}: {names}")


__all__ = ["FAIL_ON", "FailOn", "Regression", "Tolerances", "find_regressions", "load_tolerances",
           "raise_on_regressions"]
