"""Experiment trackers: a finished record's metrics (with CIs), the record file and its per-study
samples, logged to Weights & Biases or MLflow (``--log-to wandb,mlflow``).

Optional extras, off by default: the record on disk stays the source of truth; a tracker gets a
copy. Each tracker is configured by its own environment (``WANDB_PROJECT``, ``WANDB_MODE=offline``,
``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``), exactly as its users expect.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.errors import BenchError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from rrg_bench.records.schema import ResultsRecord

LOGGERS = {"wandb": "wandb", "mlflow": "mlflow"}  # --log-to name -> module that must be importable


def parse_targets(value: str | Sequence[str] | None) -> list[str]:
    """``"wandb,mlflow"`` -> checked names; a missing package is a usage error before any work starts."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value or []) if n.strip()]
    for name in names:
        if name not in LOGGERS:
            raise UsageError(f"--log-to {name!r}: choose from {', '.join(LOGGERS)}")
        if importlib.util.find_spec(LOGGERS[name]) is None:
            raise UsageError(f"--log-to {name} needs the {name} package: pip install 'rrg-bench[{name}]'")
    return names


def run_name(record: ResultsRecord) -> str:
    gen, ds = record.generator, record.dataset
    return f"{gen.get('display_name') or gen.get('name')} on {ds.get('name')}/{ds.get('split')}"


def _summary(record: ResultsRecord) -> dict[str, Any]:
    return {"dataset": record.dataset, "generator": record.generator, "run": record.run,
            "record_id": record.record_id, "run_fingerprint": record.run_fingerprint,
            "harness": record.harness, "status": record.status_line()}


def metric_key(metric_id: str) -> str:
    """MLflow-safe key of a metric id: ``bleu4[tok=ptb]`` -> ``bleu4.tok_ptb`` (no ``/``: MLflow's file
    store makes a directory of each segment, which a later ``.ci95_low`` key would collide with)."""
    return re.sub(r"[^A-Za-z0-9_\-.]", "_", metric_id.replace("[", ".").replace("]", "").replace(",", ".")
                  .replace("=", "_"))


def _log_wandb(record: ResultsRecord, record_path: Path, samples: pd.DataFrame | None) -> str:
    import wandb

    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "rrg-bench"), name=run_name(record),
                     config=_summary(record), reinit="create_new", settings=wandb.Settings(silent=True))
    values: dict[str, Any] = {}
    for mid, m in record.metrics.items():
        values[mid] = m.value
        if m.ci95:
            values[f"{mid}/ci95_low"], values[f"{mid}/ci95_high"] = m.ci95
    if samples is not None:
        values["samples"] = wandb.Table(dataframe=samples.reset_index())
    run.log(values)
    artifact = wandb.Artifact(f"record-{record.run_fingerprint[:16]}", type="rrg-bench-record")
    artifact.add_file(str(record_path))
    if record.samples:
        artifact.add_file(str(record_path.parent / record.samples["path"]))
    run.log_artifact(artifact)
    where = run.dir
    run.finish()
    return f"wandb run {run.id} ({where})"


def _log_mlflow(record: ResultsRecord, record_path: Path, samples: pd.DataFrame | None) -> str:
    import mlflow

    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "rrg-bench"))
    with mlflow.start_run(run_name=run_name(record)) as run:
        summary = _summary(record)
        mlflow.log_params({"dataset": f"{record.dataset.get('name')}/{record.dataset.get('split')}",
                           "generator": record.generator.get("name"), "run_fingerprint": record.run_fingerprint,
                           "metrics_requested": ",".join(record.status.requested)})
        mlflow.log_dict(summary, "record_summary.json")
        mlflow.log_dict({metric_key(mid): mid for mid in record.metrics}, "metric_ids.json")
        for mid, m in record.metrics.items():
            mlflow.log_metric(metric_key(mid), m.value)
            if m.ci95:
                mlflow.log_metric(metric_key(mid) + ".ci95_low", m.ci95[0])
                mlflow.log_metric(metric_key(mid) + ".ci95_high", m.ci95[1])
        mlflow.log_artifact(str(record_path))
        if samples is not None:
            mlflow.log_table(samples.reset_index(), artifact_file="samples.json")
        return f"mlflow run {run.info.run_id} ({mlflow.get_tracking_uri()})"


def log_record(targets: Sequence[str], record_path: Path, record: ResultsRecord) -> list[str]:
    """Log to each tracker; returns one line per tracker saying where it went."""
    from rrg_bench.samples import read_samples

    samples = read_samples(Path(record_path))[1] if record.samples else None
    done = []
    for name in targets:
        try:
            done.append({"wandb": _log_wandb, "mlflow": _log_mlflow}[name](record, Path(record_path), samples))
        except BenchError:
            raise
        except Exception as exc:  # the tracker's own failure (offline without WANDB_MODE, bad URI): say which
            raise BenchError(f"logging to {name} failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); the "
                             f"record itself is safe at {record_path}") from None
    return done
