"""``bench export RUN --format rexrank|jsonl|csv``: a record's predictions for other tools and leaderboards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rrg_bench.cli.common import err, handles_errors


@handles_errors
def export(
    run: Annotated[Path, typer.Argument(help="A run directory (its fullest complete record) or a results.json.")],
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="rexrank (ReXrank's submission JSON), jsonl or csv (study_id, report).")] = "rexrank",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write the predictions a record scored (exactly those texts) in another format."""
    import sys

    from rrg_bench.export import export_text

    loaded, text = export_text(run, fmt)
    if loaded.note:
        err.print(loaded.note, markup=False, highlight=False, soft_wrap=True)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output}", markup=False, highlight=False)
