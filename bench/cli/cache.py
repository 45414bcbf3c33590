"""``bench cache …`` and ``bench weights …``: inspect the annotation cache, fetch and check weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from rrg_bench.cli.common import err, handles_errors, out

cache_app = typer.Typer(help="Inspect or move the content-addressed annotation cache.", no_args_is_help=True)
weights_app = typer.Typer(help="Fetch (pinned revision) and verify model weights.", no_args_is_help=True)

CacheOpt = Annotated[Optional[Path], typer.Option(
    "--cache", envvar="BENCH_CACHE_DIR", help="Cache directory (default: the user cache dir).")]


def _open(cache_dir: Path | None, *, create: bool = False) -> Any:
    """The cache to inspect; only ``import`` may create one (a typo must not yield an empty cache)."""
    from rrg_bench.cache import DB_NAME, AnnotationCache

    if cache_dir is None:
        return AnnotationCache(None, create=create)
    given = Path(cache_dir)
    return AnnotationCache(given if given.is_file() else given / DB_NAME, create=create)


@cache_app.command("stats")
@handles_errors
def cache_stats(cache: CacheOpt = None) -> None:
    """Entries per scorer namespace, and hits/misses of the last and of all lookups."""
    from rich.table import Table

    with _open(cache) as store:
        stats = store.stats()
    table = Table(title=f"annotation cache {stats['path']} ({stats['file_size'] / 1e6:.1f} MB)", title_justify="left")
    for col in ("namespace", "entries", "lookups", "hits", "misses", "last hits", "last misses"):
        table.add_column(col, justify="left" if col == "namespace" else "right")
    for ns, s in stats["namespaces"].items():
        table.add_row(escape(ns[:48]), str(s["entries"]), str(s["lookups"]), str(s["hits"]), str(s["misses"]),
                      str(s["last_lookup"]["hits"]), str(s["last_lookup"]["misses"]))
    out.print(table)


@cache_app.command("verify")
@handles_errors
def cache_verify(cache: CacheOpt = None) -> None:
    """Check sqlite integrity, that every key matches its content address, and that values decode."""
    with _open(cache) as store:
        problems = store.verify()
    for p in problems:
        out.print(f"[red]✗[/red] {escape(p)}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    out.print("[green]✓[/green] cache is consistent")


@cache_app.command("export")
@handles_errors
def cache_export(path: Annotated[Path, typer.Argument(help="Output .jsonl or .jsonl.gz.")], cache: CacheOpt = None,
                 namespace: Annotated[Optional[str], typer.Option(help="Only this scorer namespace.")] = None) -> None:
    """Write annotations (hashes and values, never report text) to ship to a machine without weights."""
    with _open(cache) as store:
        n = store.export(path, namespace)
    out.print(f"exported {n} annotations to {path}", markup=False, highlight=False)


@cache_app.command("import")
@handles_errors
def cache_import(path: Annotated[Path, typer.Argument(help="A file written by `bench cache export`.")],
                 cache: CacheOpt = None) -> None:
    """Add exported annotations; existing keys are kept (values are immutable)."""
    with _open(cache, create=True) as store:
        n = store.import_(path)
    out.print(f"imported {n} annotations from {path}", markup=False, highlight=False)


@cache_app.command("clear")
@handles_errors
def cache_clear(cache: CacheOpt = None,
                namespace: Annotated[Optional[str], typer.Option(help="Only this scorer namespace.")] = None,
                yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Delete cached annotations (all, or one namespace)."""
    if not yes and not typer.confirm("delete cached annotations?", err=True):
        raise typer.Exit(1)
    with _open(cache) as store:
        n = store.clear(namespace)
    err.print(f"deleted {n} annotations")


@weights_app.command("list")
@handles_errors
def weights_list() -> None:
    """Known weights, their pinned source, and whether they are present here."""
    from rich.table import Table

    from rrg_bench import weights
    from rrg_bench.errors import WeightsUnavailable

    table = Table()
    for col in ("name", "source (pinned)", "present at"):
        table.add_column(col, overflow="fold")
    for name in weights.names():
        s = weights.spec(name)
        try:
            where = str(weights.resolve(name))
        except WeightsUnavailable:
            where = "[yellow]missing[/yellow]"
        table.add_row(name, escape(f"{s.repo_id}@{s.short_revision}: {', '.join(s.files)}"), where)
    out.print(table)


@weights_app.command("fetch")
@handles_errors
def weights_fetch(
    name: Annotated[str, typer.Argument(help="chexbert, radgraph, radgraph-xl, modern-radgraph-xl, bert-base-uncased")],
    revision: Annotated[Optional[str], typer.Option(help="Override the pinned revision (the record notes it).")] = None,
    source: Annotated[Optional[Path], typer.Option(
        "--from", help="Install from a file you already have instead of downloading (sha256 still checked).")] = None,
) -> None:
    """Download weights at the pinned revision (or install a local copy), check sha256, record it."""
    from rrg_bench import weights

    path = weights.fetch(name, revision=revision, source=source)
    out.print(f"{name}: {path}", markup=False, highlight=False)


@weights_app.command("verify")
@handles_errors
def weights_verify(
    name: Annotated[str, typer.Argument(help="Which weights to check.")],
    path: Annotated[
        Optional[Path], typer.Option("--path", help="Check this file/directory instead of the resolved one.")
    ] = None,
) -> None:
    """Hash the weights the harness would use and compare with the pinned or recorded sha256."""
    from rrg_bench import weights

    result = weights.verify(name, path)
    colour = {True: "green", False: "red", None: "yellow"}[result.ok]
    out.print(f"[{colour}]{escape(result.message)}[/{colour}]", soft_wrap=True)
    if result.ok is False:
        raise typer.Exit(1)
