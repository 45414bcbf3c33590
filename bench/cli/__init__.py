"""The ``bench`` command line: a thin layer over the Python API, one module per command group.

Only typer and rich are imported at start-up; every command imports what it needs inside its
body, so ``bench --help`` never loads torch or transformers. User-caused problems
(``BenchError``) end in one red line naming the file, study or option and a non-zero exit code —
1 error, 2 usage, 3 regression — never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rrg_bench import __version__
from rrg_bench.cli import cache, catalog, data, export, leaderboard, run, samples, train
from rrg_bench.cli.common import handles_errors, hide_flag_types, out

hide_flag_types()

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


app.command("run")(run.run)
app.command("generate")(run.generate)
app.command("score")(run.score)
app.command("samples")(samples.samples)
app.command("export")(export.export)
app.command("train")(train.train)
app.command("ls")(catalog.ls)
app.command("validate")(catalog.validate)
app.command("env")(catalog.env)

data_app = typer.Typer(help="Check or prepare the data a dataset needs.", no_args_is_help=True)
data_app.command("verify")(data.data_verify)
data_app.command("prepare")(data.data_prepare)
data_app.command("export")(data.data_export)
app.add_typer(data_app, name="data")
app.add_typer(cache.cache_app, name="cache")
app.add_typer(cache.weights_app, name="weights")
leaderboard.register(app)


def main() -> None:
    app()


__all__ = ["app", "handles_errors", "main"]
