"""``bench run``, ``bench generate`` and ``bench score``: the commands that make a record."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.markup import escape

from rrg_bench.cli.common import err, handles_errors, out
from rrg_bench.cli.options import (
    BatchOpt,
    CheckpointOpt,
    DataRootOpt,
    DatasetOpt,
    DeviceOpt,
    FreshOpt,
    ImageColOpt,
    ImageIdColOpt,
    ImagesOpt,
    LimitOpt,
    LogToOpt,
    MetricsOpt,
    ModelArgOpt,
    ModelOpt,
    NBootOpt,
    ProgressOpt,
    RunsDirOpt,
    SeedOpt,
    SplitOpt,
    WorkersOpt,
    model_params,
)


def reporter(progress: bool) -> Any:
    """A progress reporter drawing on stderr (stdout stays for results)."""
    from rrg_bench.progress import ProgressReporter

    return ProgressReporter(console=err, enabled=progress)


def _log(trackers: list[str], result: Any) -> None:
    from rrg_bench.loggers import log_record

    for line in log_record(trackers, result.record_path, result.record) if trackers else []:
        out.print(f"logged to {line}", soft_wrap=True, highlight=False, markup=False)


def _print_record(result: Any) -> None:
    from rich.table import Table

    record = result.record
    table = Table(title=f"{record.generator.get('name')} on {record.dataset.get('name')} / "
                        f"{record.dataset.get('split')} (n={record.predictions.n})", title_justify="left")
    table.add_column("metric")
    table.add_column("metric id", style="dim", overflow="fold")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    for mid, m in record.metrics.items():
        ci = f"[{m.ci95[0]:.{m.decimals}f}, {m.ci95[1]:.{m.decimals}f}]" if m.ci95 else "–"
        table.add_row(m.display, escape(mid), f"{m.value:.{m.decimals}f}", escape(ci))
    out.print(table)
    for spec, reason in record.unavailable.items():
        out.print(f"[yellow]unavailable[/yellow] {escape(spec)}: {escape(reason)}", soft_wrap=True)
    for warning in record.status.warnings:
        out.print(f"[dim]note: {escape(warning)}[/dim]", soft_wrap=True)
    colour = "green" if record.status.eligible else "yellow"
    out.print(f"[{colour}]{escape(record.status_line())}[/{colour}]", soft_wrap=True)
    how = "new" if result.created else "already recorded: the same computation, nothing replaced"
    out.print(f"record: {result.record_path} ({how})", soft_wrap=True, highlight=False, markup=False)


def _option(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


#: the options that choose what is generated, declared once for ``bench run`` and ``bench generate``
GENERATION_OPTIONS = [
    _option("model", ModelOpt), _option("dataset", DatasetOpt, "demo"), _option("split", SplitOpt, "test"),
    _option("data_root", DataRootOpt, None), _option("runs_dir", RunsDirOpt, Path("runs")),
    _option("checkpoint", CheckpointOpt, None), _option("model_arg", ModelArgOpt, None),
    _option("limit", LimitOpt, None), _option("seed", SeedOpt, 0), _option("device", DeviceOpt, "cpu"),
    _option("batch_size", BatchOpt, 8), _option("fresh", FreshOpt, False),
    _option("images", ImagesOpt, None), _option("image_id_col", ImageIdColOpt, "study_id"),
    _option("image_col", ImageColOpt, "image"),
]
SCORING_OPTIONS = [_option("metrics", MetricsOpt, "default"), _option("n_boot", NBootOpt, 1000),
                   _option("log_to", LogToOpt, None), _option("workers", WorkersOpt, None)]
PROGRESS_OPTION = [_option("progress", ProgressOpt, True)]

Command = TypeVar("Command", bound=Callable[..., None])


def declared(*groups: list[inspect.Parameter]) -> Callable[[Command], Command]:
    """Give a ``**options`` command the signature typer reads: the shared option groups, in order."""
    def decorate(fn: Command) -> Command:
        fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # typer reads this attribute
            [p for group in groups for p in group], return_annotation=None)
        return fn
    return decorate


def _spec_and_options(o: dict[str, Any], metrics: list[str]) -> tuple[Any, Any]:
    from rrg_bench.run import RunOptions, RunSpec

    spec = RunSpec(dataset=o["dataset"], split=o["split"], model=o["model"],
                   model_params=model_params(o["model_arg"], o["checkpoint"]), metrics=metrics, seed=o["seed"],
                   limit=o["limit"], images=o["images"], image_id_col=o["image_id_col"], image_col=o["image_col"])
    opts = RunOptions(runs_dir=o["runs_dir"], data_root=o["data_root"], device=o["device"],
                      batch_size=o["batch_size"], n_boot=o.get("n_boot", 0), progress=o["progress"],
                      fresh=o["fresh"], workers=o.get("workers"))
    return spec, opts


@handles_errors
@declared(GENERATION_OPTIONS, SCORING_OPTIONS, PROGRESS_OPTION)
def run(**options: Any) -> None:
    """Generate reports for a split and score them: a run directory with predictions and a new record.

    Re-running the same command resumes an interrupted run. Under [bold]accelerate launch -m rrg_bench run …[/bold]
    studies are sharded across processes and merged in study order.
    """
    from rrg_bench.loggers import parse_targets
    from rrg_bench.run import run as do_run
    from rrg_bench.specs import expand_metrics

    spec, opts = _spec_and_options(options, expand_metrics(options["metrics"]))
    trackers = parse_targets(options["log_to"])
    progress_reporter = reporter(options["progress"])
    with progress_reporter.session():
        result = do_run(spec, opts, progress_reporter)
    if result is not None:
        _print_record(result)
        _log(trackers, result)


@handles_errors
@declared(GENERATION_OPTIONS, PROGRESS_OPTION)
def generate(**options: Any) -> None:
    """Only generate (resumable): writes predictions.jsonl in the run directory, no scoring."""
    from rrg_bench.run import generate_only

    spec, opts = _spec_and_options(options, [])
    progress_reporter = reporter(options["progress"])
    with progress_reporter.session():
        result = generate_only(spec, opts, progress_reporter)
    out.print(f"predictions: {result.predictions_path} ({result.generated_now} generated now)", highlight=False,
              markup=False)


@handles_errors
def score(
    predictions: Annotated[Path, typer.Option(
        "--predictions", "-p", help="JSONL, JSON list, ReXrank JSON, CSV/TSV or parquet with a study id and a report "
                                    "per study, or a Hugging Face dataset: hf:ID_OR_PATH[:split].")],
    dataset: DatasetOpt = "demo",
    split: SplitOpt = "test",
    data_root: DataRootOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    metrics: MetricsOpt = "default",
    id_col: Annotated[str, typer.Option("--id-col", help="Name of the study id field/column.")] = "study_id",
    text_col: Annotated[str, typer.Option("--text-col", help="Name of the report field/column.")] = "report",
    allow_partial: Annotated[bool, typer.Option(
        "--allow-partial",
        help="Score the overlap when ids are missing or extra (record marked ineligible).")] = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o",
        help="Directory for the staged predictions and records/ (default: under --runs-dir).")] = None,
    name: Annotated[str, typer.Option(
        "--name", help="The system's name in records and leaderboards (e.g. the paper's model name).")] = "external",
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    batch_size: BatchOpt = 16,
    n_boot: NBootOpt = 1000,
    log_to: LogToOpt = None,
    workers: WorkersOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Score someone's predictions file against a dataset split (joined by study id, never by line)."""
    from rrg_bench.loggers import parse_targets
    from rrg_bench.run import RunOptions, score_file
    from rrg_bench.specs import expand_metrics

    trackers = parse_targets(log_to)
    opts = RunOptions(runs_dir=runs_dir, data_root=data_root, device=device, batch_size=batch_size, n_boot=n_boot,
                      progress=progress, workers=workers)
    progress_reporter = reporter(progress)
    with progress_reporter.session():
        result = score_file(predictions, dataset=dataset, split=split, metrics=expand_metrics(metrics), opts=opts,
                            id_col=id_col, text_col=text_col, allow_partial=allow_partial, output=output,
                            reporter=progress_reporter, seed=seed, name=name)
    _print_record(result)
    _log(trackers, result)


