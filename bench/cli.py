"""The ``bench`` command line.

Only typer and rich are imported at start-up; every command imports what it needs inside
its body, so ``bench --help`` never loads torch or transformers. User-caused problems
(``BenchError``) end in one red line naming the file, study or option and a non-zero exit
code — 1 error, 2 usage, 3 regression — never a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from rrg_bench import __version__
from rrg_bench.cli_common import err, handles_errors, out

app = typer.Typer(
    name="bench",
    help="rrg-bench: reproducible evaluation of chest X-ray report generators.\n\n"
    "Start with [bold]bench run --model knn_image[/bold] (the shipped [italic]demo[/italic] dataset), "
    "then point [bold]--dataset iu_xray/r2gen --data-root DIR[/bold] at your copy of IU X-Ray, "
    "or score your own outputs with [bold]bench score --predictions FILE[/bold].",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Check or prepare the data a dataset needs.", no_args_is_help=True)
app.add_typer(data_app, name="data")

def _version(value: bool) -> None:
    if value:
        out.print(f"rrg-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """rrg-bench."""


# ---------------------------------------------------------------- shared options

DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="Dataset id (see `bench ls datasets`).")]
SplitOpt = Annotated[str, typer.Option("--split", "-s", help="Split to evaluate: train, val/validate or test.")]
DataRootOpt = Annotated[Optional[Path], typer.Option(
    "--data-root", envvar="BENCH_DATA_ROOT",
    help="Your copy of the dataset (e.g. the R2Gen iu_xray folder). Not needed for 'demo'.")]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", envvar="BENCH_RUNS_DIR",
                                          help="Where run directories are written.")]
MetricsOpt = Annotated[str, typer.Option(
    "--metrics", "-m", help="Comma-separated scorer specs or suites, e.g. 'default' or 'nlg[tok=r2gen],chexbert'.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Run seed; each study's seed is H(seed, study id).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps …")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="Studies per generation / scoring batch.")]
NBootOpt = Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs (0 disables).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
ModelOpt = Annotated[str, typer.Option("--model", help="Generator name (see `bench ls generators`).")]
CheckpointOpt = Annotated[Optional[str], typer.Option(
    "--checkpoint", help="Model checkpoint: a local directory or a hub id (same as --model-arg checkpoint=…).")]
ModelArgOpt = Annotated[Optional[list[str]], typer.Option(
    "--model-arg", "-a", help="Generator parameter key=value (repeatable); see `bench ls generators --card NAME`.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Only the first N studies (record is then ineligible).")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Discard an existing run directory instead of resuming it.")]


def _kv(items: list[str] | None, what: str) -> dict[str, str]:
    from rrg_bench.errors import UsageError

    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} expects key=value, got {item!r}")
        result[key.strip()] = value
    return result


def _model_params(model_arg: list[str] | None, checkpoint: str | None) -> dict[str, str]:
    params = _kv(model_arg, "--model-arg")
    if checkpoint:
        params["checkpoint"] = checkpoint
    return params


def _reporter(progress: bool):
    from rrg_bench.progress import ProgressReporter

    return ProgressReporter(console=err, enabled=progress)


def _print_record(record: Any, run_dir: Path) -> None:
    from rich.markup import escape
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


# ---------------------------------------------------------------- run / generate / score


@app.command()
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

    spec = RunSpec(dataset=dataset, split=split, model=model, model_params=_model_params(model_arg, checkpoint),
                   metrics=[metrics], seed=seed,
                   limit=limit)
    opts = RunOptions(runs_dir=runs_dir, data_root=data_root, device=device, batch_size=batch_size, n_boot=n_boot,
                      progress=progress, fresh=fresh)
    reporter = _reporter(progress)
    with reporter.session():
        run_dir, record = do_run(spec, opts, reporter)
    if record is not None:
        _print_record(record, run_dir)


@app.command()
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

    spec = RunSpec(dataset=dataset, split=split, model=model, model_params=_model_params(model_arg, checkpoint),
                   seed=seed, limit=limit)
    opts = RunOptions(runs_dir=runs_dir, data_root=data_root, device=device, batch_size=batch_size,
                      progress=progress, fresh=fresh)
    reporter = _reporter(progress)
    with reporter.session():
        result = do_generate(spec, opts, reporter)
    out.print(f"predictions: {result.predictions_path} ({result.generated_now} generated now)", highlight=False, markup=False)


@app.command()
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
    reporter = _reporter(progress)
    with reporter.session():
        out_dir, record = score_file(predictions, dataset=dataset, split=split, metrics=[metrics], opts=opts,
                                     id_col=id_col, text_col=text_col, allow_partial=allow_partial, output=output,
                                     reporter=reporter, seed=seed, name=name)
    _print_record(record, out_dir)


@app.command()
@handles_errors
def train(
    model: Annotated[str, typer.Option("--model", help="A trainable generator (see `bench ls generators`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint directory to write (resumed if present).")],
    dataset: DatasetOpt = "demo",
    data_root: DataRootOpt = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="Named training recipe (see the model's card).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe field, key=value (repeatable).")] = None,
    stage: Annotated[Optional[int], typer.Option("--stage", help="Stage of a multi-stage recipe.")] = None,
    train_split: Annotated[str, typer.Option("--train-split", help="Split to train on.")] = "train",
    val_split: Annotated[str, typer.Option("--val-split", help="Split for validation loss / early stopping.")] = "val",
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N training studies (smoke runs).")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from the last checkpoint in --output.")] = True,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    progress: ProgressOpt = True,
) -> None:
    """Train a generator on a dataset's train split; the output directory is a loadable checkpoint.

    Works under [bold]accelerate launch -m rrg_bench train …[/bold] for multi-GPU / multi-node training.
    """
    from rrg_bench.baselines import TRAINERS

    from rrg_bench.errors import UsageError
    from rrg_bench.registry import registry
    from rrg_bench.runner import load_dataset
    from rrg_bench.training import TrainRequest

    registry("generators").entry(model)  # unknown names fail with suggestions
    if model not in TRAINERS:
        trainable = ", ".join(sorted(TRAINERS)) or "none yet"
        raise UsageError(f"generator {model!r} is not trainable with `bench train` (trainable: {trainable})")
    module_name, _, fn_name = TRAINERS[model].partition(":")
    import importlib

    trainer = getattr(importlib.import_module(module_name), fn_name)
    request = TrainRequest(dataset=load_dataset(dataset, data_root), output_dir=output, train_split=train_split,
                           val_split=val_split, preset=preset, overrides=_kv(set_, "--set"), resume=resume,
                           device=device, seed=seed, limit=limit, progress=progress, stage=stage)
    checkpoint = trainer(request)
    out.print(f"checkpoint: {checkpoint}", highlight=False, markup=False)


# ---------------------------------------------------------------- ls / validate / env


_KINDS = ("generators", "metrics", "datasets")


def _card_dirs(kind: str) -> list[Path]:
    import importlib.resources as res

    def folder(package: str) -> Path:
        return Path(str(res.files(package)))

    return {"generators": [folder("rrg_bench.baselines") / "cards", folder("rrg_bench.baselines")],
            "metrics": [folder("rrg_bench.metrics") / "cards"],
            "datasets": [folder("rrg_bench.data_manifests")]}[kind]


def _card_paths(kind: str, name: str) -> list[Path]:
    """A card by its exact name, else the cards of a scorer's column families
    (``chexbert`` -> ``chexbert_f1.md``; ``nlg`` -> bleu, meteor, rouge_l, cider_d, r2gen_convention)."""
    dirs = _card_dirs(kind)
    if kind == "generators":
        exact = [dirs[0] / f"{name}.md", dirs[1] / name / "CARD.md"]
    elif kind == "metrics":
        exact = [dirs[0] / f"{name}.md"]
    else:
        exact = [dirs[0] / Path(name) / "README.md"]
    found = [p for p in exact if p.is_file()][:1]
    if found or kind != "metrics":
        return found
    families = {"nlg": ["bleu", "meteor", "rouge_l", "cider_d", "r2gen_convention"]}.get(name, [f"{name}_f1"])
    return [p for p in (_card_dirs(kind)[0] / f"{f}.md" for f in families) if p.is_file()]


def _card_names(kind: str) -> list[str]:
    base = _card_dirs(kind)[0]
    if kind == "datasets":
        return sorted(p.parent.relative_to(base).as_posix() for p in base.rglob("README.md"))
    names = {p.stem for p in base.glob("*.md")}
    if kind == "generators":
        names |= {p.parent.name for p in _card_dirs(kind)[1].glob("*/CARD.md")}
    return sorted(names)


@app.command("ls")
@handles_errors
def ls(
    kind: Annotated[Optional[str], typer.Argument(help="generators, metrics or datasets (default: all).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show where each entry comes from.")] = False,
    card: Annotated[Optional[str], typer.Option("--card", help="Print the card of one entry.")] = None,
) -> None:
    """List registered generators, metrics and datasets (built-ins and plugins)."""
    from rich.markdown import Markdown
    from rich.table import Table

    from rrg_bench.errors import UsageError
    from rrg_bench.registry import registry

    kinds = _KINDS if kind is None else (kind,)
    if kind is not None and kind not in _KINDS:
        raise UsageError(f"unknown kind {kind!r}; choose one of {', '.join(_KINDS)}")
    if card:
        for k in kinds:
            paths = _card_paths(k, card)
            for path in paths:
                out.print(Markdown(path.read_text(encoding="utf-8")))
            if paths:
                return
        known = "; ".join(f"{k}: {', '.join(_card_names(k))}" for k in kinds)
        raise UsageError(f"no card named {card!r}. Cards — {known}")
    for k in kinds:
        reg = registry(k)
        table = Table(title=k, title_justify="left")
        table.add_column("name")
        table.add_column("origin")
        if verbose:
            table.add_column("target")
        for entry in reg.entries():
            row = [entry.name, entry.origin] + ([entry.target] if verbose else [])
            table.add_row(*row)
        out.print(table)


@app.command()
@handles_errors
def validate(
    data_root: DataRootOpt = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Also verify this dataset's data.")] = None,
) -> None:
    """Check that every registered entry loads and every shipped manifest is intact."""
    from rrg_bench.errors import BenchError as _BE
    from rrg_bench.registry import registry

    problems: list[str] = []
    for k in _KINDS:
        for entry in registry(k).entries():
            try:
                registry(k).get(entry.name)
            except _BE as exc:
                problems.append(str(exc))
    for name in registry("datasets").names():
        try:
            registry("datasets").get(name)(None).identity(registry("datasets").get(name).splits[-1])
        except _BE as exc:
            problems.append(f"dataset {name}: {exc}")
    if dataset:
        report = registry("datasets").get(dataset)(data_root).verify()
        problems.extend(f"{dataset}: {m}" for m in report.mismatched + report.missing)
    for p in problems:
        out.print(f"[red]✗[/red] {escape(p)}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    out.print("[green]✓[/green] registries, plugins and manifests are valid")


@app.command()
@handles_errors
def env(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The environment fingerprint a record would carry (versions, Java, git state)."""
    from rrg_bench.environment import environment_info, harness_info

    info = {"harness": harness_info(), "environment": environment_info(os.environ.get("BENCH_DEVICE", "cpu"))}
    if as_json:
        out.print_json(json.dumps(info))
        return
    from rich.table import Table

    table = Table(show_header=False)
    for block, values in info.items():
        for key, value in values.items():
            if isinstance(value, dict):
                for k2, v2 in value.items():
                    table.add_row(f"{block}.{key}.{k2}", str(v2))
            else:
                table.add_row(f"{block}.{key}", str(value))
    out.print(table)


# ---------------------------------------------------------------- data


@data_app.command("verify")
@handles_errors
def data_verify(
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="One dataset (default: all).")] = None,
    data_root: DataRootOpt = None,
) -> None:
    """Report what data is present, what is missing or differs from the manifest, and where to get it."""
    from rrg_bench.registry import registry

    names = [dataset] if dataset else registry("datasets").names()
    bad = False
    for name in names:
        report = registry("datasets").get(name)(data_root).verify()
        mark = "[green]✓[/green]" if report.ok else "[red]✗[/red]"
        out.print(f"{mark} [bold]{name}[/bold]  root: {report.data_root or '(not set)'}", highlight=False)
        for p in report.present:
            out.print(f"   present: {escape(p)}", soft_wrap=True, highlight=False)
        for m in report.missing:
            out.print(f"   [yellow]missing[/yellow]: {escape(m)}", soft_wrap=True, highlight=False)
        for m in report.mismatched:
            out.print(f"   [red]differs[/red]: {escape(m)}", soft_wrap=True, highlight=False)
        if not report.ok and report.how_to_get:
            out.print(f"   how to get it: {escape(report.how_to_get)}", soft_wrap=True, highlight=False)
        bad |= bool(report.mismatched) or (dataset is not None and not report.ok)
    if bad:
        raise typer.Exit(1)


#: dataset -> (module, prepare function); each writes under <data-root>/<module.PREPARED_SUBDIR>
_PREPARERS = {
    "mimic_cxr/official": ("rrg_bench.datasets.mimic_cxr", "prepare_mimic_cxr"),
    "mimic_cxr/rexrank": ("rrg_bench.datasets.mimic_cxr_rexrank", "prepare_mimic_cxr_rexrank"),
    "chexpert_plus/rexrank": ("rrg_bench.datasets.chexpert_plus_rexrank", "prepare_chexpert_plus_rexrank"),
}
_PREPARE_ALIASES = {"mimic_cxr": "mimic_cxr/official"}


@data_app.command("prepare")
@handles_errors
def data_prepare(
    dataset: Annotated[str, typer.Argument(
        help="mimic_cxr (= mimic_cxr/official), mimic_cxr/rexrank or chexpert_plus/rexrank.")],
    source: Annotated[Path, typer.Option(
        "--physionet-root", "--source",
        help="Your credentialed copy: MIMIC-CXR(-JPG) 2.0.0, or the CheXpert Plus folder.")],
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Where to write the prepared references (default: a subfolder of --data-root).")] = None,
    data_root: DataRootOpt = None,
    rexrank_json: Annotated[Optional[Path], typer.Option(
        "--rexrank-json", help="mimic_cxr/rexrank only: use ReXrank's own reference text from this JSON.")] = None,
    check_counts: Annotated[bool, typer.Option(
        "--check-counts/--no-check-counts", help="Require the published study/image counts.")] = True,
    progress: ProgressOpt = True,
) -> None:
    """Build local reference files from credentialed data (they never leave your data root)."""
    import importlib

    from rrg_bench.errors import UsageError

    name = _PREPARE_ALIASES.get(dataset, dataset)
    if name not in _PREPARERS:
        raise UsageError(f"`bench data prepare` knows {', '.join(['mimic_cxr', *_PREPARERS])}; got {dataset!r}")
    if rexrank_json is not None and name != "mimic_cxr/rexrank":
        raise UsageError("--rexrank-json applies to mimic_cxr/rexrank only")
    module_name, fn_name = _PREPARERS[name]
    module = importlib.import_module(module_name)
    target = out_dir or ((data_root / module.PREPARED_SUBDIR) if data_root else None)
    if target is None:
        raise UsageError("say where to write the prepared data: --out DIR or --data-root DIR")
    kwargs: dict[str, Any] = {"check_counts": check_counts}
    if rexrank_json is not None:
        kwargs["rexrank_json"] = rexrank_json
    reporter = _reporter(progress)
    with reporter.session():
        if name != "chexpert_plus/rexrank":  # the CheXpert Plus table is one CSV: nothing to show
            kwargs["progress"] = reporter.task
        report = getattr(module, fn_name)(source, target, **kwargs)
    out.print(report.summary(), soft_wrap=True, highlight=False, markup=False)


def _mount_subcommands() -> None:
    """Sub-apps live in their own modules; their heavy imports stay inside their commands."""
    from rrg_bench.cli_cache import cache_app, weights_app
    from rrg_bench.cli_leaderboard import register as register_leaderboard

    app.add_typer(cache_app, name="cache")
    app.add_typer(weights_app, name="weights")
    register_leaderboard(app)


_mount_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
