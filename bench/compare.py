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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.errors import BenchError, UsageError
from rrg_bench.records import LoadedRecord, StatsUnavailable, load_any, load_stats
from rrg_bench.records.columns import metric_family, metric_signature, signature_differences

if TYPE_CHECKING:
    import pandas as pd

#: significance level of ``--fail-on significant`` and of table markers
ALPHA = 0.05

ScorerFactory = Callable[[str], Any]  # scorer spec -> object with ``aggregate(stats) -> dict``


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


def aligned_stats(base: LoadedRecord, new: LoadedRecord, scorer_spec: str) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    scorer = scorer_factory(scorer_spec)
    prepare = getattr(scorer, "rows_aggregate", None)  # a registered Scorer has it; a bare aggregator need not
    boot = paired_bootstrap(scorer.aggregate, a, b, n_boot=n_boot, seed=seed, prepare=prepare)
    ar = (approximate_randomisation(scorer.aggregate, a, b, n_trials=n_trials, seed=seed, prepare=prepare)
          if n_trials > 0 else {})
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




def load(path: Path | str) -> LoadedRecord:
    """A record file, or a run directory's fullest complete record (``LoadedRecord.note`` says which)."""
    return load_any(path)


__all__ = [
    "ALPHA", "Comparison", "LoadedRecord", "MetricDelta", "StatsUnavailable", "check_same_references",
    "compare_records", "load", "load_stats", "metric_family", "metric_signature", "paired_tests",
    "signature_differences",
]
