"""``bench leaderboard build|check|add``, ``bench table`` and ``bench compare``.

Kept out of ``bench/cli.py`` so that file stays a readable index of the core commands;
``bench/cli.py`` calls :func:`register`. Command bodies import their heavy parts (pandas,
matplotlib, the stats module) lazily, like every other command, so ``bench --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from rrg_bench.cli.common import err, handles_errors, out

RootOpt = Annotated[Optional[Path], typer.Option(
    "--root", envvar="BENCH_LEADERBOARD_ROOT",
    help="Leaderboard directory holding boards/, records/, tables/ and CHANGELOG.md (default: the leaderboard/ "
         "of the repository you stand in, found by walking up from the current directory).")]
NBootOpt = Annotated[int, typer.Option("--n-boot", help="Paired-bootstrap resamples (0 disables significance tests).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the resampling.")]
MetricOpt = Annotated[Optional[list[str]], typer.Option(
    "--metric", "-m", help="A metric id to include (repeatable; default: all). Quote ids with brackets.")]
DecimalsOpt = Annotated[Optional[int], typer.Option(
    "--decimals", min=0, max=12, metavar="N", help="Decimal places for every number (default: each metric's own).")]


def say_which(loaded: Any) -> Any:
    """Tell the user which record of a run was read (on stderr: stdout may be a table)."""
    if loaded.note:
        err.print(loaded.note, highlight=False, markup=False, soft_wrap=True)
    return loaded


def _layout(root: Path | None) -> Any:
    from rrg_bench.leaderboard.boards import BoardLayout, discover_root

    return BoardLayout(Path(root) if root is not None else discover_root())


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
            out.print(f"[green]✓[/green] {escape(name)}: committed tables match a rebuild; published versions "
                      "unchanged", highlight=False, soft_wrap=True)
    raise_on_check(result)


def leaderboard_add(
    record: Annotated[Path, typer.Argument(help="A results.json (or its run directory).")],
    board: Annotated[Optional[str], typer.Option(
        "--board", help="Board to add to (default: the one for its dataset/split).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Show this record instead of the board's current one for the same system; the old one "
                          "is retired to records/<board>/retired/ (never deleted).")] = False,
    root: RootOpt = None,
) -> None:
    """Validate a results record, recompute its values, and copy it with its statistics into records/<board>/."""
    from rrg_bench.leaderboard.store import add_record

    result = add_record(_layout(root), record, board, replace=replace)
    say_which(result)
    out.print(f"[green]✓[/green] {result.state} {escape(str(result.record))} ({len(result.stats)} statistics files)",
              highlight=False, soft_wrap=True)
    if result.reasons:
        out.print(f"[yellow]shown but not ranked on {escape(result.board)}[/yellow]: "
                  f"{escape('; '.join(result.reasons))}",
                  highlight=False, soft_wrap=True)
    out.print(f"next: bump 'version' in boards/{result.board}.yaml, add a CHANGELOG line, "
              f"run `bench leaderboard build {result.board}`", highlight=False, soft_wrap=True, markup=False)


# ---------------------------------------------------------------- table


def table(
    records: Annotated[list[Path], typer.Argument(help="results.json files or run directories (one row each).")],
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="md|tex|csv|json|html",
                                     help="Output format; md renders as a GitHub table.")] = "md",
    baseline: Annotated[Optional[Path], typer.Option(
        "--baseline", help="Record to test every other row against (paired bootstrap); its row is marked.")] = None,
    metric: MetricOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    n_boot: NBootOpt = 1000,
    seed: SeedOpt = 0,
    ci: Annotated[bool, typer.Option("--ci/--no-ci", help="Show ± half the 95% CI width.")] = True,
    decimals: DecimalsOpt = None,
) -> None:
    """A paper table from any records of one dataset split: rows = runs, columns = metrics.

    Columns come in the order papers print them (BLEU-1..4, METEOR, ROUGE-L, CIDEr, then clinical
    metrics) unless --metric names them; numbers are written in full whatever the terminal width.
    """
    from rrg_bench.errors import UsageError
    from rrg_bench.leaderboard.paper import paper_table
    from rrg_bench.leaderboard.render import RENDERERS
    from rrg_bench.records import union_view

    if fmt not in RENDERERS:
        raise UsageError(f"--format must be one of {', '.join(RENDERERS)}; got {fmt!r}")
    loaded = [say_which(union_view(p)) for p in records]
    base = say_which(union_view(baseline)) if baseline is not None else None
    built = paper_table(loaded, baseline=base, metric_ids=metric, n_boot=n_boot, seed=seed, show_ci=ci,
                        decimals=decimals)
    text = RENDERERS[fmt](built)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}", highlight=False, markup=False)
    else:
        sys.stdout.write(text)


# ---------------------------------------------------------------- compare


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
    fmt: Annotated[str, typer.Option(
        "--format", "-f", metavar="table|md|json",
        help="table (terminal / CI log), md (GitHub table for a PR comment) or json (for scripts); "
                               "md and json keep stdout to the document, the verdict goes to stderr.")] = "table",
    decimals: DecimalsOpt = None,
) -> None:
    """Paired comparison of two runs on the same references; exit 3 when a metric regressed.

    For a model repository's CI: compare the new checkpoint's record with the published one.
    """
    from rrg_bench.compare import compare_records, load
    from rrg_bench.errors import UsageError
    from rrg_bench.leaderboard import compare_view as view
    from rrg_bench.tolerances import FAIL_ON, Tolerances, find_regressions, load_tolerances, raise_on_regressions

    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}; got {fail_on!r}")
    if fmt not in view.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(view.FORMATS)}; got {fmt!r}")
    tolerances = load_tolerances(tolerance) if tolerance is not None else Tolerances()
    a, b = say_which(load(base)), say_which(load(new))
    comparison = compare_records(a, b, metrics=metric, n_boot=n_boot, n_trials=n_trials, seed=seed,
                                 require_stats=fail_on == "significant")
    regressions = find_regressions(comparison, tolerances, fail_on)  # type: ignore[arg-type]
    rows = view.delta_rows(comparison, tolerances, {r.delta.metric_id for r in regressions}, decimals)
    verdict = (f"Regression (--fail-on {fail_on}): " + "; ".join(f"{r.delta.metric_id} {r.reason}" for r in regressions)
               if regressions else f"No regression (--fail-on {fail_on}, tolerances: {tolerances.source}).")
    if fmt == "json":
        sys.stdout.write(view.to_json(comparison, rows, regressions=regressions, fail_on=fail_on,
                                      tolerance_source=tolerances.source))
    elif fmt == "md":
        sys.stdout.write(view.to_markdown(comparison, rows, f"**{verdict}**"))
    else:
        view.print_table(view.rich_table(comparison, rows))
        for note in comparison.notes:
            out.print(f"[dim]note:[/dim] {escape(note)}", highlight=False, soft_wrap=True)
        if comparison.only_in_base or comparison.only_in_new:
            out.print(escape(f"not compared: only in base {comparison.only_in_base}, only in new "
                             f"{comparison.only_in_new}"), style="dim", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    raise_on_regressions(regressions, comparison)
    (out if fmt == "table" else err).print(
        f"[green]✓[/green] no regression (--fail-on {fail_on}, tolerances: {escape(tolerances.source)})",
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
