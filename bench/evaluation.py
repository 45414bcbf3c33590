"""The Python API: ``score`` texts you have, or ``evaluate`` a registered generator like ``bench run``.

Both go through the same stages as the command line (spec parsing, scorers, bootstrap, records),
so a number from a notebook equals the number from ``bench``.

>>> import rrg_bench
>>> result = rrg_bench.score(["no pleural effusion.", "heart is enlarged."],
...                         ["there is no pleural effusion.", "the heart is normal."],
...                         metrics="chexpert_rules", n_boot=0)
>>> for metric_id in sorted(result.to_dict())[:2]:
...     print(metric_id)
chexpert_rules_f1[labels=14,avg=macro,uncertain=positive]
chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]
>>> result["chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]"].value  # "No Finding" agrees once
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.errors import BenchError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from rrg_bench.records.schema import MetricValue, ResultsRecord


@dataclass
class Scores:
    """Every computed metric (value, 95% CI, convention) and every requested one that could not run."""

    metrics: dict[str, MetricValue]
    unavailable: dict[str, str] = field(default_factory=dict)
    #: scorer spec -> per-study sufficient statistics (index: study id), for your own resampling
    stats: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: one row per study: reference, prediction and every per-study value (as ``samples.parquet``)
    samples: pd.DataFrame | None = None

    def __getitem__(self, metric_id: str) -> MetricValue:
        try:
            return self.metrics[metric_id]
        except KeyError:
            raise KeyError(f"{metric_id!r}; computed: {', '.join(self.metrics)}") from None

    def __iter__(self) -> Any:
        return iter(self.metrics)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{metric id: {"value", "ci95", "display", "convention", "higher_is_better"}}``."""
        return {mid: {"value": m.value, "ci95": list(m.ci95) if m.ci95 else None, "display": m.display,
                      "convention": m.convention, "higher_is_better": m.higher_is_better}
                for mid, m in self.metrics.items()}

    def __repr__(self) -> str:
        rows = [f"  {mid}: {m.value:.{m.decimals}f}" + (f" [{m.ci95[0]:.{m.decimals}f}, {m.ci95[1]:.{m.decimals}f}]"
                                                        if m.ci95 else "") for mid, m in self.metrics.items()]
        rows += [f"  {spec}: unavailable ({why})" for spec, why in self.unavailable.items()]
        return "Scores(\n" + "\n".join(rows) + "\n)"


def _studies(hyps: Sequence[str], refs: Sequence[str], ids: Sequence[str] | None) -> list[Any]:
    from rrg_bench.api.types import Study
    from rrg_bench.hashing import sha256_text

    if isinstance(hyps, str) or isinstance(refs, str):
        raise UsageError("hyps and refs are sequences of reports, one per study (got a single string)")
    if len(hyps) != len(refs):
        raise UsageError(f"hyps has {len(hyps)} reports but refs has {len(refs)}; they must be aligned")
    if not hyps:
        raise UsageError("nothing to score: hyps and refs are empty")
    ids = [str(i) for i in range(len(refs))] if ids is None else [str(i) for i in ids]
    if len(ids) != len(refs) or len(set(ids)) != len(ids):
        raise UsageError("ids must be unique, one per study")
    for what, texts in (("hyps", hyps), ("refs", refs)):
        bad = [i for i, t in zip(ids, texts) if not isinstance(t, str)]
        if bad:
            raise UsageError(f"{what}: the report of study {bad[0]} is not a string")
        for i, t in zip(ids, texts):
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise UsageError(f"{what}: the report of study {i} holds {t[exc.start]!r} at character "
                                 f"{exc.start}, a lone surrogate that is not text (often a broken \\u "
                                 "escape); fix or drop it") from None
    return [Study(study_id=i, split="-", reference=r, reference_sha256=sha256_text(r)) for i, r in zip(ids, refs)]


def score(hyps: Sequence[str], refs: Sequence[str], metrics: str | Sequence[str] = "nlg",
          ids: Sequence[str] | None = None, *, n_boot: int = 1000, seed: int = 0, device: str = "cpu",
          batch_size: int = 16, progress: bool = False, workers: int | None = None) -> Scores:
    """Score aligned hypotheses against references (one reference per study).

    ``metrics`` is a ``--metrics`` value (``"nlg"``, ``"default"``, ``"nlg[conv=r2gen],chexbert"``)
    or a list of specs. CIs are percentile bootstraps over studies (``n_boot=0`` disables them).
    ``workers`` is ``--workers`` (processes a scorer may use; never changes a value). Java programs
    (METEOR, the PTB tokeniser) stay up for later calls in this process and end with it.
    Raises ``BenchError`` when no requested metric could be computed.
    """
    from rrg_bench.progress import ProgressReporter
    from rrg_bench.run.score import samples_frame, score_studies
    from rrg_bench.run.spec import RunOptions, check_options
    from rrg_bench.specs import build_scorers

    check_options(RunOptions(device=device, batch_size=batch_size, n_boot=n_boot, workers=workers))
    studies = _studies(hyps, refs, ids)
    scorers = build_scorers(metrics)
    reporter = ProgressReporter(enabled=progress)
    with reporter.session():
        outcome = score_studies(studies, list(hyps), scorers, device=device, batch_size=batch_size, n_boot=n_boot,
                                seed=seed, reporter=reporter, workers=workers)
    if not outcome.metrics:
        raise BenchError("no requested metric could be computed: "
                         + "; ".join(f"{s}: {r}" for s, r in outcome.unavailable.items()))
    samples_table = samples_frame([s.study_id for s in studies], list(refs), list(hyps), outcome)
    return Scores(outcome.metrics, outcome.unavailable, outcome.stats, samples_table)


def evaluate(model: str, dataset: str = "demo", split: str = "test", metrics: str | Sequence[str] = "default", *,
             model_params: dict[str, str] | None = None, checkpoint: str | None = None, limit: int | None = None,
             seed: int = 0, runs_dir: str | Path = "runs", data_root: str | Path | None = None, device: str = "cpu",
             batch_size: int = 8, n_boot: int = 1000, progress: bool = False,
             log_to: str | Sequence[str] | None = None, workers: int | None = None) -> ResultsRecord:
    """Generate with a registered generator and score, exactly as ``bench run``; returns the record.

    The run directory (predictions, journal, ``records/``) is written under ``runs_dir``; calling
    again resumes, and an identical computation returns the record already there. ``log_to``
    (``"wandb"``, ``"mlflow"`` or both) also logs the record to those trackers.
    """
    from rrg_bench.loggers import log_record, parse_targets
    from rrg_bench.progress import ProgressReporter
    from rrg_bench.run import RunOptions, RunSpec, run
    from rrg_bench.specs import expand_metrics

    trackers = parse_targets(log_to)
    params = dict(model_params or {})
    if checkpoint is not None:
        params["checkpoint"] = checkpoint
    spec = RunSpec(dataset=dataset, split=split, model=model, model_params=params, metrics=expand_metrics(metrics),
                   seed=seed, limit=limit)
    opts = RunOptions(runs_dir=Path(runs_dir), data_root=Path(data_root) if data_root else None, device=device,
                      batch_size=batch_size, n_boot=n_boot, progress=progress, workers=workers)
    reporter = ProgressReporter(enabled=progress)
    with reporter.session():
        result = run(spec, opts, reporter)
    if result is None:
        raise BenchError("evaluate() ran on a non-main process of a distributed launch; the record is rank 0's")
    log_record(trackers, result.record_path, result.record)
    return result.record


def samples(run_or_record: str | Path) -> pd.DataFrame:
    """The per-study samples (reference, prediction, per-study values) of a record or of a run's
    fullest complete record, as ``bench samples`` shows them."""
    from rrg_bench.samples import read_samples

    return read_samples(run_or_record)[1]
