"""``bench samples RUN``: the per-study texts and values of a record, or its worst studies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from rrg_bench.cli.common import err, handles_errors, out

FORMATS = ("table", "jsonl", "csv")


@handles_errors
def samples(
    run: Annotated[Path, typer.Argument(help="A run directory (its fullest complete record) or a results.json.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (terminal), jsonl or csv (full texts).")] = "table",
    worst: Annotated[Optional[str], typer.Option(
        "--worst", help="Show the studies with the worst per-study value of this metric (e.g. bleu4, meteor).")] = None,
    n: Annotated[int, typer.Option("-n", help="How many studies --worst shows.")] = 20,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Per-study reference, prediction and metric values (sentence BLEU, METEOR per segment, labels, …)."""
    import sys

    from rrg_bench.errors import UsageError
    from rrg_bench.samples import metric_column, read_samples
    from rrg_bench.samples import worst as worst_studies

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    loaded, frame = read_samples(run)
    if loaded.note:
        err.print(loaded.note, markup=False, highlight=False, soft_wrap=True)
    focus = None
    if worst is not None:
        focus = metric_column(loaded, frame, worst)
        frame = worst_studies(loaded, frame, worst, n)
    if fmt == "table":
        _print_table(frame, focus)
        return
    text = (frame.reset_index().to_json(orient="records", lines=True, force_ascii=False) if fmt == "jsonl"
            else frame.to_csv())
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output} ({len(frame)} studies)", markup=False, highlight=False)


def _print_table(frame: object, focus: str | None) -> None:
    from rich.table import Table

    def short(text: str, width: int = 160) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    table = Table(show_lines=True)
    table.add_column("study")
    if focus:
        table.add_column(focus, justify="right")
    table.add_column("prediction", overflow="fold")
    table.add_column("reference", overflow="fold")
    for study_id, row in frame.iterrows():  # type: ignore[attr-defined]
        cells = [escape(str(study_id))] + ([f"{row[focus]:.4f}"] if focus else [])
        table.add_row(*cells, escape(short(row["prediction"])), escape(short(row["reference"])))
    out.print(table)
