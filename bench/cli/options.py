"""Options shared by several commands, declared once so their names and help never drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rrg_bench.errors import UsageError

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-d", metavar="ID", help="Dataset id (see `bench ls datasets`).")]
SplitOpt = Annotated[str, typer.Option(
    "--split", "-s", metavar="SPLIT", help="Split to evaluate: train, val/validate or test.")]
DataRootOpt = Annotated[Optional[Path], typer.Option(
    "--data-root", envvar="BENCH_DATA_ROOT", metavar="DIR",
    help="Your copy of the dataset (e.g. the R2Gen iu_xray folder). Not needed for 'demo'.")]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", envvar="BENCH_RUNS_DIR", metavar="DIR",
                                          help="Where run directories are written.")]
MetricsOpt = Annotated[str, typer.Option(
    "--metrics", "-m", metavar="SPECS",
    help="Comma-separated scorer specs or suites, e.g. 'default' or 'nlg\\[tok=r2gen],chexbert'.")]
SeedOpt = Annotated[int, typer.Option(
    "--seed", metavar="INT", help="Run seed; each study's seed is H(seed, study id).")]
DeviceOpt = Annotated[str, typer.Option("--device", metavar="DEVICE", help="cpu, cuda, cuda:1, mps …")]
BatchOpt = Annotated[int, typer.Option(
    "--batch-size", "-b", metavar="N", help="Studies per generation / scoring batch.")]
NBootOpt = Annotated[int, typer.Option(
    "--n-boot", metavar="N", help="Bootstrap resamples for the 95% CIs (0 disables).")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", metavar="N", help="Processes a scorer may spread its work over (METEOR JVMs for nlg, at most one "
                                   "per usable core); never changes a value. Default: each scorer's own (nlg: 1, "
                                   "see benchmarks/README.md).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
ModelOpt = Annotated[str, typer.Option(
    "--model", metavar="NAME", help="Generator name (see `bench ls generators`).")]
CheckpointOpt = Annotated[Optional[str], typer.Option(
    "--checkpoint", metavar="DIR_OR_HUB_ID",
    help="Model checkpoint: a local directory or a hub id (same as --model-arg checkpoint=…).")]
ModelArgOpt = Annotated[Optional[list[str]], typer.Option(
    "--model-arg", "-a", metavar="KEY=VALUE",
    help="Generator parameter key=value (repeatable); see `bench ls generators --card NAME`.")]
LimitOpt = Annotated[Optional[int], typer.Option(
    "--limit", metavar="N", help="Only the first N studies (record is then ineligible).")]
ImagesOpt = Annotated[Optional[str], typer.Option(
    "--images", metavar="hf:ID_OR_PATH[:SPLIT]",
    help="Images from a Hugging Face dataset, hf:ID_OR_PATH[:split] (a save_to_disk folder, a parquet "
         "file or a Hub id), matched to studies by id; default: files under --data-root.")]
ImageIdColOpt = Annotated[str, typer.Option(
    "--image-id-col", metavar="COLUMN", help="Study id column of the --images dataset.")]
ImageColOpt = Annotated[str, typer.Option(
    "--image-col", metavar="COLUMN", help="Image column of the --images dataset.")]
LogToOpt = Annotated[Optional[str], typer.Option(
    "--log-to", metavar="wandb,mlflow",
    help="Also log the record (metrics with CIs, the record, the samples) to wandb and/or mlflow, "
         "comma-separated; configured by their usual environment variables (WANDB_MODE, MLFLOW_TRACKING_URI).")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Discard an existing run directory instead of resuming it.")]


def key_values(items: list[str] | None, what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; anything else is a usage error naming ``what``."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} expects key=value, got {item!r}")
        result[key.strip()] = value
    return result


def model_params(model_arg: list[str] | None, checkpoint: str | None) -> dict[str, str]:
    params = key_values(model_arg, "--model-arg")
    if checkpoint:
        params["checkpoint"] = checkpoint
    return params
