"""Paired comparison of two results records: the regression gate a model repository runs in CI.

Why paired and from per-study statistics: two runs on the same references differ study by
study, and the question "did the new checkpoint get worse?" is answered by resampling the
*same* studies for both (paired bootstrap) or by swapping their outputs (approximate
randomisation), never by comparing two independent CIs. Both work on the per-study stats
parquet files a run writes next to its ``results.json``; nothing is re-generated or
re-annotated.

Numbers are only compared when they mean the same thing: the records must have scored the
same references (``dataset.references_sha256``) and every compared metric must carry the
same scorer spec, convention and metric version. Anything else is a ``BenchError`` that
names the metric and the two values, because a silent comparison across conventions is the
failure this harness exists to prevent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Sequence

from rrg_bench.errors import BenchError, RegressionFound, UsageError
from rrg_bench.hashing import sha256_file
from rrg_bench.records import MetricValue, ResultsRecord, load_record

if TYPE_CHECKING:
    import pandas as pd

FailOn = Literal["any", "significant"]
FAIL_ON: tuple[str, ...] = ("any", "significant")
#: significance level of ``--fail-on significant`` and of table markers
ALPHA = 0.05

ScorerFactory = Callable[[str], Any]  # scorer spec -> object with ``aggregate(stats) -> dict``


class StatsUnavailable(BenchError):
    """A record's per-study statistics file is not where its ``scores`` block says."""


# ---------------------------------------------------------------- records and their stats


@dataclass(frozen=True)
class LoadedRecord:
    """A validated record and the file it came from (stats paths are relative to it)."""

    path: Path
    record: ResultsRecord

    @property
    def label(self) -> str:
        return str(self.record.generator.get("name", self.path.parent.name))

    @property
    def short_fingerprint(self) -> str:
        return self.record.run_fingerprint[:12]


def load(path: Path | str) -> LoadedRecord:
    """A ``results.json`` file or a run directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return LoadedRecord(path, load_record(path))


def stats_candidates(loaded: LoadedRecord, relative: str) -> list[Path]:
    """Where a record's stats file may live: next to it (a run directory), or in the
    companion directory ``<record stem>/`` that ``bench leaderboard add`` writes."""
    return [loaded.path.parent / relative, loaded.path.with_suffix("") / relative]


def locate_stats(loaded: LoadedRecord, scorer_spec: str) -> Path:
    entry = loaded.record.scores.get(scorer_spec)
    if entry is None or "path" not in entry:
        raise StatsUnavailable(f"{loaded.path}: the record lists no per-study statistics for scorer {scorer_spec!r}")
    for candidate in stats_candidates(loaded, entry["path"]):
        if candidate.is_file():
            expected = entry.get("sha256")
            if expected and sha256_file(candidate) != expected:  # never silently skipped: data integrity
                raise BenchError(
                    f"{candidate}: sha256 differs from the one in {loaded.path}; the statistics belong to "
                    "another run — restore the run directory or re-add the record"
                )
            return candidate
    tried = " or ".join(str(c) for c in stats_candidates(loaded, entry["path"]))
    raise StatsUnavailable(
        f"{loaded.path}: per-study statistics for {scorer_spec!r} not found (looked for {tried}); "
        "significance tests need the run directory (runs/…/scores/) or a record added with "
        "`bench leaderboard add`, which keeps them"
    )


def load_stats(loaded: LoadedRecord, scorer_spec: str) -> "pd.DataFrame":
    import pandas as pd

    path = locate_stats(loaded, scorer_spec)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise StatsUnavailable(f"{path}: cannot read per-study statistics ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------- may two numbers share a column?


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


def check_same_references(records: Sequence[LoadedRecord]) -> None:
    first = records[0]
    ref = first.record.dataset.get("references_sha256")
    for other in records[1:]:
        got = other.record.dataset.get("references_sha256")
        if got != ref or ref is None:
            raise BenchError(
                f"{other.path} scored other references than {first.path} "
                f"(dataset {other.record.dataset.get('name')}/{other.record.dataset.get('split')} "
                f"references_sha256 {str(got)[:12]}… vs {first.record.dataset.get('name')}/"
                f"{first.record.dataset.get('split')} {str(ref)[:12]}…); their numbers are not comparable"
            )


# ---------------------------------------------------------------- paired tests


@dataclass
class MetricDelta:
    """One compared metric. ``delta`` is new − base; ``drop`` is the worsening (> 0 is worse)."""

    metric_id: str
    display: str
    higher_is_better: bool
    decimals: int
    base: float
    new: float
    ci95: tuple[float, float] | None = None  # of new − base, paired bootstrap
    p_bootstrap: float | None = None
    p_randomisation: float | None = None

    @property
    def delta(self) -> float:
        return self.new - self.base

    @property
    def drop(self) -> float:
        return -self.delta if self.higher_is_better else self.delta

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p_bootstrap is not None and self.p_bootstrap < alpha


@dataclass
class Comparison:
    base: LoadedRecord
    new: LoadedRecord
    deltas: list[MetricDelta]
    only_in_base: list[str] = field(default_factory=list)
    only_in_new: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_boot: int = 0
    n_trials: int = 0
    seed: int = 0


def registry_scorer(spec: str) -> Any:
    """The registered scorer for a record's scorer spec (its ``aggregate`` is what we need)."""
    from rrg_bench.specs import build_scorer

    return build_scorer(spec)


def aligned_stats(base: LoadedRecord, new: LoadedRecord, scorer_spec: str) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Both stats tables in the same study order; an error names the two files' scorer."""
    from rrg_bench.stats import align_by_study

    try:
        return align_by_study(load_stats(base, scorer_spec), load_stats(new, scorer_spec))
    except UsageError as exc:
        raise BenchError(f"{base.path} vs {new.path}, scorer {scorer_spec!r}: {exc}") from None


def paired_tests(base: LoadedRecord, new: LoadedRecord, scorer_spec: str, *, n_boot: int, n_trials: int,
                 seed: int, scorer_factory: ScorerFactory = registry_scorer) -> dict[str, tuple[Any, float | None]]:
    """Per column of one scorer: (paired-bootstrap result, approximate-randomisation p or None)."""
    from rrg_bench.stats import approximate_randomisation, paired_bootstrap

    a, b = aligned_stats(base, new, scorer_spec)
    aggregate = scorer_factory(scorer_spec).aggregate
    boot = paired_bootstrap(aggregate, a, b, n_boot=n_boot, seed=seed)
    ar = approximate_randomisation(aggregate, a, b, n_trials=n_trials, seed=seed) if n_trials > 0 else {}
    return {col: (res, ar.get(col)) for col, res in boot.items()}


def compare_records(base: LoadedRecord, new: LoadedRecord, *, metrics: Sequence[str] | None = None,
                    n_boot: int = 1000, n_trials: int = 1000, seed: int = 0, require_stats: bool = False,
                    scorer_factory: ScorerFactory = registry_scorer) -> Comparison:
    """Align the two records' metrics, refuse incomparable ones, run the paired tests.

    Without per-study statistics (and ``require_stats`` false) the deltas are reported
    without CI or p-values and a note says why.
    """
    check_same_references([base, new])
    common = [mid for mid in base.record.metrics if mid in new.record.metrics]
    if metrics:
        unknown = [m for m in metrics if m not in common]
        if unknown:
            raise UsageError(f"metric(s) {', '.join(unknown)} are not in both records; common: {', '.join(common)}")
        common = [m for m in common if m in set(metrics)]
    comparison = Comparison(base, new, [], n_boot=n_boot, n_trials=n_trials, seed=seed,
                            only_in_base=[m for m in base.record.metrics if m not in new.record.metrics],
                            only_in_new=[m for m in new.record.metrics if m not in base.record.metrics])
    _refuse_other_conventions(base, new, comparison)
    if not common:
        raise BenchError(f"{base.path} and {new.path} share no metric id; nothing to compare "
                         f"(base has {', '.join(base.record.metrics) or 'none'}, new has "
                         f"{', '.join(new.record.metrics) or 'none'})")
    for mid in common:
        ma, mb = base.record.metrics[mid], new.record.metrics[mid]
        conflict = signature_differences(ma, mb, include_impl=False)
        if conflict:
            raise BenchError(
                f"metric {mid!r} was computed differently in {base.path} and {new.path} "
                f"({'; '.join(conflict)}); re-score one of them so both use the same convention"
            )
        impl_diff = signature_differences(ma, mb)
        if impl_diff:
            comparison.notes.append(f"{mid}: implementation differs ({'; '.join(impl_diff)})")
        comparison.deltas.append(MetricDelta(mid, ma.display, ma.higher_is_better, ma.decimals, ma.value, mb.value))
    by_scorer: dict[str, list[MetricDelta]] = {}
    for d in comparison.deltas:
        by_scorer.setdefault(base.record.metrics[d.metric_id].scorer, []).append(d)
    for spec, deltas in by_scorer.items():
        if n_boot <= 0:
            continue
        try:
            tests = paired_tests(base, new, spec, n_boot=n_boot, n_trials=n_trials, seed=seed,
                                 scorer_factory=scorer_factory)
        except StatsUnavailable as exc:
            if require_stats:
                raise
            comparison.notes.append(f"{spec}: no paired test ({exc})")
            continue
        for d in deltas:
            if d.metric_id in tests:
                res, p_ar = tests[d.metric_id]
                d.ci95 = _pair(res.ci95)
                d.p_bootstrap = float(res.p_value)
                d.p_randomisation = None if p_ar is None else float(p_ar)
    return comparison


def _pair(ci: Any) -> tuple[float, float] | None:
    return None if ci is None else (float(ci[0]), float(ci[1]))


def _refuse_other_conventions(base: LoadedRecord, new: LoadedRecord, comparison: Comparison) -> None:
    """A metric present in one record only but whose family is in the other under another
    convention (``bleu4[tok=r2gen]`` vs ``bleu4[tok=ptb]``) is a convention mismatch, not a
    missing metric: fail unless some metric of that family is comparable."""
    compared = {metric_family(m) for m in base.record.metrics if m in new.record.metrics}
    for mid in comparison.only_in_new:
        family = metric_family(mid)
        clash = [m for m in comparison.only_in_base if metric_family(m) == family]
        if clash and family not in compared:
            raise BenchError(
                f"different metric conventions: {new.path} has {mid!r} but {base.path} has "
                f"{', '.join(repr(c) for c in clash)}; score both records with the same convention"
            )


# ---------------------------------------------------------------- tolerances and the decision


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


__all__ = [
    "ALPHA", "Comparison", "FAIL_ON", "LoadedRecord", "MetricDelta", "Regression", "StatsUnavailable",
    "Tolerances", "check_same_references", "compare_records", "find_regressions", "load", "load_stats",
    "load_tolerances", "locate_stats", "metric_family", "metric_signature", "paired_tests",
    "raise_on_regressions", "signature_differences",
]
