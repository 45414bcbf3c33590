"""``bench run``, ``bench generate`` and ``bench score``: the commands that make a record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from rrg_bench.cli.common import err, handles_errors, out
from rrg_bench.cli.options import (BatchOpt, CheckpointOpt, DataRootOpt, DatasetOpt, DeviceOpt, FreshOpt, LimitOpt,
                                   MetricsOpt, ModelArgOpt, ModelOpt, NBootOpt, ProgressOpt, RunsDirOpt, SeedOpt,
                                   SplitOpt, model_params)


def reporter(progress: bool) -> Any:
    """A progress reporter drawing on stderr (stdout stays for results)."""
    from rrg_bench.progress import ProgressReporter

    return ProgressReporter(console=err, enabled=progress)


def _print_record(record: Any, run_dir: Path) -> None:
    from rich.table import Table

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
    state = record.status
    colour = "green" if state.eligible else "yellow"
    out.print(f"[{colour}]{state.state}, {'eligible' if state.eligible else 'not eligible'}[/{colour}]"
              + (f": {escape('; '.join(state.reasons))}" if state.reasons else ""), soft_wrap=True)
    out.print(f"record: {run_dir / 'results.json'}", soft_wrap=True, highlight=False, markup=False)


@handles_errors
def run(
    model: ModelOpt,
    dataset: DatasetOpt = "demo",
    split: SplitOpt = "test",
    data_root: DataRootOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    metrics: MetricsOpt = "default",
    checkpoint: CheckpointOpt = None,
    model_arg: ModelArgOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    batch_size: BatchOpt = 8,
    n_boot: NBootOpt = 1000,
    fresh: FreshOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Generate reports for a split and score them: writes a run directory with results.json.

    Re-running the same command resumes an interrupted run. Under [bold]accelerate launch -m rrg_bench run …[/bold]
    studies are sharded across processes and merged in study order.
    """
    from rrg_bench.runner import RunOptions, RunSpec
    from rrg_bench.runner import run as do_run

    spec = RunSpec(dataset=dataset, split=split, model=model, model_params=model_params(model_arg, checkpoint),
                   metrics=[metrics], seed=seed,
                   limit=limit)
    opts = RunOptions(runs_dir=runs_dir, data_root=data_root, device=device, batch_size=batch_size, n_boot=n_boot,
                      progress=progress, fresh=fresh)
    progress_reporter = reporter(progress)
    with progress_reporter.session():
        run_dir, record = do_run(spec, opts, progress_reporter)
    if record is not None:
        _print_record(record, run_dir)


@handles_errors
def generate(
    model: ModelOpt,
    dataset: DatasetOpt = "demo",
    split: SplitOpt = "test",
    data_root: DataRootOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    checkpoint: CheckpointOpt = None,
    model_arg: ModelArgOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    batch_size: BatchOpt = 8,
    fresh: FreshOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Only generate (resumable): writes predictions.jsonl in the run directory, no scoring."""
    from rrg_bench.runner import RunOptions, RunSpec
    from rrg_bench.runner import generate as do_generate

    spec = RunSpec(dataset=dataset, split=split, model=model, model_params=model_params(model_arg, checkpoint),
                   seed=seed, limit=limit)
    opts = RunOptions(runs_dir=runs_dir, data_root=data_root, device=device, batch_size=batch_size,
                      progress=progress, fresh=fresh)
    progress_reporter = reporter(progress)
    with progress_reporter.session():
        result = do_generate(spec, opts, progress_reporter)
    out.print(f"predictions: {result.predictions_path} ({result.generated_now} generated now)", highlight=False, markup=False)


@handles_errors
def score(
    predictions: Annotated[Path, typer.Option("--predictions", "-p", help="JSONL, JSON list or CSV with a study id and a report per study.")],
    dataset: DatasetOpt = "demo",
    split: SplitOpt = "test",
    data_root: DataRootOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    metrics: MetricsOpt = "default",
    id_col: Annotated[str, typer.Option("--id-col", help="Name of the study id field/column.")] = "study_id",
    text_col: Annotated[str, typer.Option("--text-col", help="Name of the report field/column.")] = "report",
    allow_partial: Annotated[bool, typer.Option(
        "--allow-partial", help="Score the overlap when ids are missing or extra (record marked ineligible).")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Directory for results.json and scores/.")] = None,
    name: Annotated[str, typer.Option(
        "--name", help="The system's name in records and leaderboards (e.g. the paper's model name).")] = "external",
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    batch_size: BatchOpt = 16,
    n_boot: NBootOpt = 1000,
    progress: ProgressOpt = True,
) -> None:
    """Score someone's predictions file against a dataset split (joined by study id, never by line)."""
    from rrg_bench.runner import RunOptions, score_file

    opts = RunOptions(runs_dir=runs_dir, data_root=data_root, device=device, batch_size=batch_size, n_boot=n_boot,
                      progress=progress)
    progress_reporter = reporter(progress)
    with progress_reporter.session():
        out_dir, record = score_file(predictions, dataset=dataset, split=split, metrics=[metrics], opts=opts,
                                     id_col=id_col, text_col=text_col, allow_partial=allow_partial, output=output,
                                     reporter=progress_reporter, seed=seed, name=name)
    _print_record(record, out_dir)


