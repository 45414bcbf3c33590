"""``bench ls``, ``bench validate`` and ``bench env``: what is registered, installed and recorded."""

from __future__ import annotations

import json
import os
from typing import Annotated, Optional

import typer
from rich.markup import escape

from rrg_bench.cli.common import handles_errors, out
from rrg_bench.cli.options import DataRootOpt


@handles_errors
def ls(
    kind: Annotated[Optional[str], typer.Argument(
        help="generators, metrics, datasets, suites, trainers or preparers (default: all).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show where each entry comes from.")] = False,
    card: Annotated[Optional[str], typer.Option("--card", help="Print the card of one entry.")] = None,
) -> None:
    """List what is registered (built-ins and plugins), or print one entry's card."""
    from rich.markdown import Markdown
    from rich.table import Table

    from rrg_bench.errors import UsageError
    from rrg_bench.registry import KINDS, registry

    kinds = list(KINDS) if kind is None else [registry(kind).kind.name]
    if card:
        for k in kinds:
            reg = registry(k)
            if card in reg:
                path = reg.card(card)
                if path is None or not path.is_file():
                    raise UsageError(f"{reg.kind.singular} {card!r} has no card (looked for {path or 'CARD.md'})")
                out.print(Markdown(path.read_text(encoding="utf-8")))
                return
        known = "; ".join(f"{k}: {', '.join(registry(k).names())}" for k in kinds)
        raise UsageError(f"no entry named {card!r}. Known — {known}")
    for k in kinds:
        reg = registry(k)
        table = Table(title=k, title_justify="left")
        for column in ("name", "what", "origin") + (("target", "card") if verbose else ()):
            table.add_column(column, overflow="fold")
        for entry in reg.entries():
            row = [escape(entry.name), escape(reg.summary(entry.name)), entry.origin]
            if verbose:
                path = reg.card(entry.name) if entry.card else None
                row += [entry.target, str(path) if path else "(beside the module)"]
            table.add_row(*row)
        out.print(table)


@handles_errors
def validate(
    data_root: DataRootOpt = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Also verify this dataset's data.")] = None,
) -> None:
    """Check that every registered entry loads, has a card, and every shipped manifest is intact."""
    from rrg_bench.errors import BenchError
    from rrg_bench.registry import KINDS, registry

    problems: list[str] = []
    for k in KINDS:
        reg = registry(k)
        for entry in reg.entries():
            try:
                reg.get(entry.name)
                path = reg.card(entry.name)
                if path is None or not path.is_file():
                    problems.append(f"{reg.kind.singular} {entry.name}: no card ({path or 'CARD.md beside it'})")
            except BenchError as exc:
                problems.append(str(exc))
    datasets = registry("datasets")
    for name in datasets.names():
        try:
            cls = datasets.get(name)
            cls(None).identity(cls.splits[-1])
        except BenchError as exc:
            problems.append(f"dataset {name}: {exc}")
    if dataset:
        report = datasets.get(dataset)(data_root).verify()
        problems.extend(f"{dataset}: {m}" for m in report.mismatched + report.missing)
    for p in problems:
        out.print(f"[red]✗[/red] {escape(p)}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    out.print("[green]✓[/green] registries, cards, plugins and manifests are valid")


@handles_errors
def env(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The environment fingerprint a record would carry (versions, Java, git state)."""
    from rich.table import Table

    from rrg_bench.environment import environment_info, harness_info

    info = {"harness": harness_info(), "environment": environment_info(os.environ.get("BENCH_DEVICE", "cpu"))}
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table(show_header=False)
    for block, values in info.items():
        for key, value in values.items():
            if isinstance(value, dict):
                for k2, v2 in value.items():
                    table.add_row(f"{block}.{key}.{k2}", str(v2))
            else:
                table.add_row(f"{block}.{key}", str(value))
    out.print(table)
