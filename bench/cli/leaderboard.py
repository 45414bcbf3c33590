"""``bench leaderboard build|check|add``, ``bench table`` and ``bench compare``.

Kept out of ``bench/cli.py`` so that file stays a readable index of the core commands;
``bench/cli.py`` calls :func:`register`. Command bodies import their heavy parts (pandas,
matplotlib, the stats module) lazily, like every other command, so ``bench --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from rrg_bench.cli.common import err, handles_errors, out

RootOpt = Annotated[Optional[Path], typer.Option(
    "--root", envvar="BENCH_LEADERBOARD_ROOT",
    help="Leaderboard directory holding boards/, records/, tables/ and CHANGELOG.md (default: this checkout's).")]
NBootOpt = Annotated[int, typer.Option("--n-boot", help="Paired-bootstrap resamples (0 disables significance tests).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the resampling.")]
MetricOpt = Annotated[Optional[list[str]], typer.Option(
    "--metric", "-m", help="A metric id to include (repeatable; default: all). Quote ids with brackets.")]


def say_which(loaded: Any) -> Any:
    """Tell the user which record of a run was read (on stderr: stdout may be a table)."""
    if loaded.note:
        err.print(loaded.note, highlight=False, markup=False, soft_wrap=True)
    return loaded


def _layout(root: Path | None) -> Any:
    from rrg_bench.leaderboard.boards import BoardLayout, default_root

    return BoardLayout(Path(root) if root is not None else default_root())


# ---------------------------------------------------------------- leaderboard


def leaderboard_build(
    board: Annotated[Optional[str], typer.Argument(help="Board name (default: every board).")] = None,
    root: RootOpt = None,
) -> None:
    """Build tables/<board>/v<N>/ (md, tex, csv, json, html, plots, provenance) from the board's records.

    A published version directory is immutable: a different result needs a version bump in the
    board file and a CHANGELOG line.
    """
    from rrg_bench.leaderboard.build import build

    layout = _layout(root)
    boards = [board] if board else layout.board_names()
    if not boards:
        from rrg_bench.errors import UsageError

        raise UsageError(f"no boards in {layout.boards_dir}")
    for name in boards:
        result = build(layout, name)
        verb = "wrote" if result.state == "written" else "unchanged:"
        out.print(f"[green]✓[/green] {escape(name)} v{result.version}: {verb} {escape(str(result.directory))} "
                  f"({len(result.files)} files)", highlight=False, soft_wrap=True)


def leaderboard_check(
    boards: Annotated[Optional[list[str]], typer.Argument(help="Boards to check (default: all).")] = None,
    root: RootOpt = None,
) -> None:
    """Rebuild every board in a temporary directory; exit 3 if any committed file differs."""
    from rrg_bench.leaderboard.build import check, raise_on_check

    layout = _layout(root)
    result = check(layout, boards or None)
    for name, problems in result.items():
        if problems:
            out.print(f"[red]✗[/red] {escape(name)}", highlight=False)
            for p in problems:
                out.print(f"   {p}", highlight=False, soft_wrap=True, markup=False)
        else:
            out.print(f"[green]✓[/green] {escape(name)}: committed tables match a rebuild; published versions unchanged", highlight=False)
    raise_on_check(result)


def leaderboard_add(
    record: Annotated[Path, typer.Argument(help="A results.json (or its run directory).")],
    board: Annotated[Optional[str], typer.Option("--board", help="Board to add to (default: the one for its dataset/split).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Show this record instead of the board's current one for the same system; the old one is retired "
             "to records/<board>/retired/ (never deleted).")] = False,
    root: RootOpt = None,
) -> None:
    """Validate a results record, recompute its values, and copy it with its statistics into records/<board>/."""
    from rrg_bench.leaderboard.store import add_record

    result = add_record(_layout(root), record, board, replace=replace)
    say_which(result)
    out.print(f"[green]✓[/green] {result.state} {escape(str(result.record))} ({len(result.stats)} statistics files)",
              highlight=False, soft_wrap=True)
    if result.reasons:
        out.print(f"[yellow]shown but not ranked on {escape(result.board)}[/yellow]: {escape('; '.join(result.reasons))}",
                  highlight=False, soft_wrap=True)
    out.print(f"next: bump 'version' in boards/{result.board}.yaml, add a CHANGELOG line, "
              f"run `bench leaderboard build {result.board}`", highlight=False, soft_wrap=True, markup=False)


# ---------------------------------------------------------------- table


def table(
    records: Annotated[list[Path], typer.Argument(help="results.json files or run directories (one row each).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="tex, md, csv, json or html.")] = "md",
    baseline: Annotated[Optional[Path], typer.Option(
        "--baseline", help="Record to test every other row against (paired bootstrap); its row is marked.")] = None,
    metric: MetricOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    n_boot: NBootOpt = 1000,
    seed: SeedOpt = 0,
    ci: Annotated[bool, typer.Option("--ci/--no-ci", help="Show ± half the 95% CI width.")] = True,
) -> None:
    """A paper table from any records of one dataset split: rows = runs, columns = metrics."""
    import sys

    from rrg_bench.errors import UsageError
    from rrg_bench.leaderboard.paper import paper_table
    from rrg_bench.leaderboard.render import RENDERERS
    from rrg_bench.records import union_view

    if fmt not in RENDERERS:
        raise UsageError(f"--format must be one of {', '.join(RENDERERS)}; got {fmt!r}")
    loaded = [say_which(union_view(p)) for p in records]
    base = say_which(union_view(baseline)) if baseline is not None else None
    built = paper_table(loaded, baseline=base, metric_ids=metric, n_boot=n_boot, seed=seed, show_ci=ci)
    text = RENDERERS[fmt](built)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}", highlight=False, markup=False)
    else:
        sys.stdout.write(text)


# ---------------------------------------------------------------- compare


def _fmt(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def compare(
    base: Annotated[Path, typer.Argument(help="Baseline record (results.json or run directory).")],
    new: Annotated[Path, typer.Argument(help="Candidate record.")],
    tolerance: Annotated[Optional[Path], typer.Option(
        "--tolerance", help="YAML: metric id or glob -> maximum allowed drop (absolute). Default: 0 for all.")] = None,
    fail_on: Annotated[str, typer.Option(
        "--fail-on", help="any: any drop beyond tolerance; significant: beyond tolerance and p < 0.05.")] = "any",
    metric: MetricOpt = None,
    n_boot: NBootOpt = 1000,
    n_trials: Annotated[int, typer.Option("--n-trials", help="Approximate-randomisation trials (0 disables).")] = 1000,
    seed: SeedOpt = 0,
) -> None:
    """Paired comparison of two runs on the same references; exit 3 when a metric regressed.

    For a model repository's CI: compare the new checkpoint's record with the published one.
    """
    from rich import box
    from rich.table import Table as RichTable

    from rrg_bench.compare import compare_records, load
    from rrg_bench.errors import UsageError
    from rrg_bench.tolerances import FAIL_ON, Tolerances, find_regressions, load_tolerances, raise_on_regressions

    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}; got {fail_on!r}")
    tolerances = load_tolerances(tolerance) if tolerance is not None else Tolerances()
    a, b = say_which(load(base)), say_which(load(new))
    comparison = compare_records(a, b, metrics=metric, n_boot=n_boot, n_trials=n_trials, seed=seed,
                                 require_stats=fail_on == "significant")
    regressions = find_regressions(comparison, tolerances, fail_on)  # type: ignore[arg-type]
    failed = {r.delta.metric_id for r in regressions}
    rich_table = RichTable(title=escape(f"{b.label} ({b.short_fingerprint}) vs {a.label} ({a.short_fingerprint}) — "
                                        f"{a.record.dataset.get('name')}/{a.record.dataset.get('split')}"),
                           title_justify="left", box=box.SIMPLE_HEAD, caption_justify="left",
                           caption="Δ, its paired-bootstrap 95% CI and p (boot) and the approximate-"
                                   "randomisation p (AR) compare the same studies; tol = allowed drop.")
    for name, justify in (("metric", "left"), ("base", "right"), ("new", "right"), ("Δ new−base", "right"),
                          ("95% CI of Δ", "right"), ("p boot", "right"), ("p AR", "right"),
                          ("tol", "right"), ("", "left")):
        rich_table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for d in comparison.deltas:
        dec = d.decimals
        ci = f"[{d.ci95[0]:+.{dec}f}, {d.ci95[1]:+.{dec}f}]" if d.ci95 else "–"
        tol = tolerances.for_metric(d.metric_id)
        if d.metric_id in failed:
            status = "[bold red]REGRESSION[/bold red]"
        elif d.drop > tol:
            status = "[yellow]drop (n.s.)[/yellow]"
        elif d.drop < 0:
            status = "[green]better[/green]"
        else:
            status = "ok"
        rich_table.add_row(escape(d.metric_id), _fmt(d.base, dec), _fmt(d.new, dec),
                           _fmt(d.delta, dec, signed=True), ci, _p(d.p_bootstrap), _p(d.p_randomisation),
                           f"{tol:g}", status)
    # CI logs are not terminals (80 columns by default); never fold the numbers
    (out if out.is_terminal else Console(width=max(out.width, 140))).print(rich_table)
    for note in comparison.notes:
        out.print(f"[dim]note:[/dim] {escape(note)}", highlight=False, soft_wrap=True)
    if comparison.only_in_base or comparison.only_in_new:
        out.print(escape(f"not compared: only in base {comparison.only_in_base}, only in new {comparison.only_in_new}"),
                  style="dim", highlight=False, soft_wrap=True)
    raise_on_regressions(regressions, comparison)
    out.print(f"[green]✓[/green] no regression (--fail-on {fail_on}, tolerances: {escape(tolerances.source)})",
              highlight=False, soft_wrap=True)


# ---------------------------------------------------------------- registration


def register(app: typer.Typer) -> None:
    """Add ``leaderboard build|check|add``, ``table`` and ``compare`` to the ``bench`` app."""
    board_app = typer.Typer(help="Build, check and feed the published leaderboards.", no_args_is_help=True)
    board_app.command("build")(handles_errors(leaderboard_build))
    board_app.command("check")(handles_errors(leaderboard_check))
    board_app.command("add")(handles_errors(leaderboard_add))
    app.add_typer(board_app, name="leaderboard")
    app.command("table")(handles_errors(table))
    app.command("compare")(handles_errors(compare))
