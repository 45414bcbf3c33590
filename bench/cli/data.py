"""``bench data verify|prepare``: check a dataset's files, build credentialed ones locally."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from rrg_bench.cli.common import handles_errors, out
from rrg_bench.cli.options import DataRootOpt, ProgressOpt, key_values


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


#: short names accepted by ``bench data prepare``
ALIASES = {"mimic_cxr": "mimic_cxr/official"}


@handles_errors
def data_prepare(
    dataset: Annotated[str, typer.Argument(
        help="A dataset with a preparer (`bench ls preparers`): mimic_cxr (= mimic_cxr/official), "
             "mimic_cxr/rexrank, chexpert_plus/rexrank, …")],
    source: Annotated[Path, typer.Option(
        "--source", "--physionet-root",
        help="Your credentialed copy: MIMIC-CXR(-JPG) 2.0.0, or the CheXpert Plus folder.")],
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Where to write the prepared references (default: a subfolder of --data-root).")] = None,
    data_root: DataRootOpt = None,
    rexrank_json: Annotated[Optional[Path], typer.Option(
        "--rexrank-json", help="mimic_cxr/rexrank only: use ReXrank's own reference text from this JSON.")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", help="A preparer-specific option key=value (see the dataset's card).")] = None,
    check_counts: Annotated[bool, typer.Option(
        "--check-counts/--no-check-counts", help="Require the published study/image counts.")] = True,
    progress: ProgressOpt = True,
) -> None:
    """Build local reference files from credentialed data (they never leave your data root)."""
    from rrg_bench.api.preparer import PrepareRequest
    from rrg_bench.cli.run import reporter as make_reporter
    from rrg_bench.errors import UsageError
    from rrg_bench.registry import registry

    preparers = registry("preparers")
    name = ALIASES.get(dataset, dataset)
    preparer = preparers.get(name)()
    options = key_values(option, "--option")
    if rexrank_json is not None:
        options["rexrank_json"] = str(rexrank_json)
    unknown = sorted(set(options) - set(preparer.options))
    if unknown:
        allowed = ", ".join(preparer.options) or "none"
        raise UsageError(f"`bench data prepare {name}` takes no option {', '.join(unknown)} (its options: {allowed})")
    target = out_dir or ((data_root / preparer.subdir) if data_root else None)
    if target is None:
        raise UsageError("say where to write the prepared data: --out DIR or --data-root DIR")
    reporter = make_reporter(progress)
    with reporter.session():
        report = preparer.prepare(PrepareRequest(source=source, output_dir=target, check_counts=check_counts,
                                                 progress=reporter.task, options=options))
    out.print(report.summary(), soft_wrap=True, highlight=False, markup=False)


@handles_errors
def data_export(
    dataset: Annotated[str, typer.Argument(help="Dataset id (see `bench ls datasets`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A folder (hf) or a .parquet file to write.")],
    split: Annotated[str, typer.Option("--split", "-s", help="The split to export.")] = "test",
    fmt: Annotated[str, typer.Option("--format", "-f", help="hf (datasets save_to_disk folder) or parquet.")] = "hf",
    with_references: Annotated[bool, typer.Option(
        "--with-references", help="Include the reference text (never share it for credentialed datasets).")] = False,
    data_root: DataRootOpt = None,
) -> None:
    """Export a split's studies (ids, image paths, reference hashes) as a Hugging Face dataset or parquet."""
    from rrg_bench.datasets.export import export_split
    from rrg_bench.registry import registry

    n = export_split(registry("datasets").get(dataset)(data_root), split, fmt, output,
                     with_references=with_references)
    out.print(f"wrote {n} studies of {dataset}/{split} to {output}", highlight=False, markup=False)
