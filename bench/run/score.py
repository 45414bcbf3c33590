"""Stage 3 of a run: score aligned predictions with the requested scorers, in memory.

Each scorer returns per-study sufficient statistics; the 95% CIs are bootstrapped from them
here, so nothing downstream (compare, tables, boards) ever re-runs a model. A scorer that cannot
run on this machine (weights not fetched, no Java) is recorded as *unavailable* with the fix; it
never silently vanishes from the record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rrg_bench.api.dataset import Dataset
from rrg_bench.api.scorer import ScoringContext
from rrg_bench.api.types import Study
from rrg_bench.errors import ToolUnavailable, WeightsUnavailable
from rrg_bench.progress import ProgressReporter
from rrg_bench.records.schema import MetricValue

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class ScoringOutcome:
    requested: list[str]
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    stats: dict[str, pd.DataFrame] = field(default_factory=dict)  # scorer spec -> per-study statistics
    #: scorer spec -> per-study values a person can read (Scorer.per_study), for samples.parquet
    per_study: dict[str, pd.DataFrame] = field(default_factory=dict)
    cache: dict[str, dict[str, int]] = field(default_factory=dict)
    fingerprints: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def train_references(dataset: Dataset | None) -> Callable[[], list[str]] | None:
    """The dataset's train references, loaded only if a scorer asks (most never do)."""
    if dataset is None or "train" not in dataset.splits:
        return None

    @functools.lru_cache(maxsize=1)
    def load() -> list[str]:
        return [s.reference for s in dataset.studies("train")]

    return load


def _metric_values(scorer: Any, result: Any, cis: dict[str, Any], n: int) -> dict[str, MetricValue]:
    impl = scorer.impl()
    return {
        col.id: MetricValue(
            value=float(result.values[col.id]), ci95=cis.get(col.id), n=n, display=col.display,
            convention=col.convention, higher_is_better=col.higher_is_better, decimals=col.decimals,
            scorer=scorer.spec, metric_version=scorer.version, ci_method=result.ci_method, impl=impl,
            per_label=result.per_label)
        for col in scorer.columns() if col.id in result.values
    }


def score_studies(studies: Sequence[Study], hypotheses: Sequence[str], scorers: Sequence[Any], *, device: str,
                  batch_size: int, n_boot: int, seed: int, reporter: ProgressReporter,
                  dataset: Dataset | None = None, workers: int | None = None) -> ScoringOutcome:
    """Every scorer over the same aligned (study, hypothesis, reference) triples."""
    from rrg_bench.cache import AnnotationCache
    from rrg_bench.stats import bootstrap_ci

    ctx = ScoringContext(device=device, batch_size=batch_size, cache=AnnotationCache(), progress=reporter.task,
                         dataset=dataset.name if dataset is not None else None,
                         train_references=train_references(dataset), workers=workers)
    ids = [s.study_id for s in studies]
    refs = [s.reference for s in studies]
    outcome = ScoringOutcome(requested=[s.spec for s in scorers])
    for scorer in scorers:
        reason = scorer.unavailable_reason()
        if reason is None:
            try:
                result = scorer.score(ids, list(hypotheses), refs, ctx)
            except (WeightsUnavailable, ToolUnavailable) as exc:
                reason = str(exc)
        if reason is not None:
            outcome.unavailable[scorer.spec] = reason
            continue
        outcome.unavailable.update(result.unavailable)
        outcome.fingerprints[scorer.spec] = scorer.fingerprint()
        outcome.stats[scorer.spec] = result.stats
        view = scorer.per_study(result.stats)
        if view is not None:
            outcome.per_study[scorer.spec] = view
        outcome.cache[scorer.spec] = {"hits": result.cache_hits, "misses": result.cache_misses}
        outcome.warnings.extend(f"{scorer.spec}: {note}" for note in result.notes)
        prepare = getattr(scorer, "rows_aggregate", None)  # a Scorer subclass has it; a duck-typed plugin need not
        cis = bootstrap_ci(scorer.aggregate, result.stats, n_boot=n_boot, seed=seed, prepare=prepare) if n_boot else {}
        outcome.metrics.update(_metric_values(scorer, result, cis, len(ids)))
    return outcome


def samples_frame(study_ids: Sequence[str], references: Sequence[str], hypotheses: Sequence[str],
                  outcome: ScoringOutcome) -> pd.DataFrame:
    """One row per study: its reference, its prediction, and every scorer's per-study values."""
    import pandas as pd

    frame = pd.DataFrame({"reference": list(references), "prediction": list(hypotheses)},
                         index=pd.Index(list(study_ids), name="study_id"))
    for view in outcome.per_study.values():
        frame = frame.join(view, how="left")
    return frame
