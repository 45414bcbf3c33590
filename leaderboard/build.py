"""Build a board's published version directory, and check committed boards are reproducible.

Why versions are immutable: a number quoted in a paper must stay findable. A built
``tables/<board>/v<N>/`` is never rewritten; any change in the records, the spec, or the
rendering needs ``version: N+1`` in the board file and a CHANGELOG line, exactly as
lm-evaluation-harness versions its tasks. ``check`` rebuilds every board into a temporary
directory and compares bytes, so CI catches a table that no longer follows from its inputs.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rrg_bench.errors import BenchError, RegressionFound
from rrg_bench.hashing import sha256_file
from rrg_bench.leaderboard.boards import BoardLayout, BoardSpec
from rrg_bench.leaderboard.columns import disambiguate
from rrg_bench.leaderboard.render import RENDERERS, dumps, to_latex
from rrg_bench.leaderboard.table import (
    Table,
    TableColumn,
    TableRow,
    columns_for,
    fill_cells,
    mark_best,
    other_conventions,
    row_labels,
)
from rrg_bench.records import LoadedRecord
from rrg_bench.records import load_any as load
from rrg_bench.records.recompute import recompute_problems

TABLE_FILES = ("table.md", "table.tex", "table.csv", "table.json", "table.html")
PROVENANCE = "provenance.json"


# ---------------------------------------------------------------- eligibility


def _check_belongs(spec: BoardSpec, lr: LoadedRecord) -> None:
    ds = lr.record.dataset
    if ds.get("name") != spec.dataset.name or ds.get("split") != spec.dataset.split:
        raise BenchError(
            f"{lr.path}: scored on {ds.get('name')}/{ds.get('split')}, but board {spec.board!r} is "
            f"{spec.dataset.name}/{spec.dataset.split}; move it to the right board's records directory"
        )


def eligibility_reasons(spec: BoardSpec, lr: LoadedRecord) -> list[str]:
    """Why a record may not be ranked on this board (empty list: it may)."""
    rec, rules, pin = lr.record, spec.eligibility, spec.dataset
    reasons = list(rec.status.reasons) if not rec.status.eligible else []
    if not rec.status.eligible and not reasons:
        reasons.append("the record marks itself not eligible")
    if rec.predictions.coverage < rules.min_coverage:
        reasons.append(f"coverage {rec.predictions.coverage:.4f} < {rules.min_coverage:g}")
    if rec.predictions.limit is not None and not rules.allow_limit:
        reasons.append(f"--limit {rec.predictions.limit}: not the full split")
    for key in ("manifest_version", "manifest_sha256", "references_sha256"):
        want = getattr(pin, key)
        got = rec.dataset.get(key)
        if want is not None and got != want:
            reasons.append(f"dataset {key} {str(got)[:16]} differs from the board's {want[:16]}")
    required = spec.columns if rules.require_all_columns else [spec.sort.metric]
    for mid in required:
        if mid not in rec.metrics:
            others = other_conventions(lr, mid)
            extra = (f" (it has {', '.join(others)}: another convention, never merged into this column)"
                     if others else "")
            reasons.append(f"lacks metric {mid}{extra}")
    for mid, version in rules.metric_versions.items():
        m = rec.metrics.get(mid)
        if m is not None and m.metric_version != version:
            reasons.append(f"{mid} is metric_version {m.metric_version!r}; the board requires {version!r}")
    return list(dict.fromkeys(reasons))


# ---------------------------------------------------------------- the board table


def promised_column(metric_id: str) -> TableColumn:
    """A board column no record carries yet: named and explained as its registered scorer declares it."""
    from rrg_bench.leaderboard.columns import registered_column

    declared = registered_column(metric_id)
    if declared is None:
        return TableColumn(metric_id, metric_id, "no record on this board carries this metric", True, 4, "", "")
    return TableColumn(metric_id, declared.display, declared.convention, declared.higher_is_better,
                       declared.decimals, "", "")


def board_table(spec: BoardSpec, records: Sequence[LoadedRecord]) -> Table:
    for lr in records:
        _check_belongs(spec, lr)
    reasons = [eligibility_reasons(spec, lr) for lr in records]
    ranked_flags = [not r for r in reasons]
    columns, excluded, missing = columns_for(spec.columns, records, ranked_flags, spec.eligibility.ignore_impl)
    for mid in missing:  # no record carries it: keep the column, visibly empty
        columns.insert(spec.columns.index(mid), promised_column(mid))
    columns = disambiguate(columns)
    labels = row_labels(records)
    rows = []
    for lr, label, why in zip(records, labels, reasons):
        row = TableRow(label=label, run_fingerprint=lr.record.run_fingerprint, source=lr.path.name,
                       eligible=not why, reasons=list(why), unofficial=bool(lr.record.generator.get("unofficial")),
                       missing=[mid for mid in spec.columns if f"lacks metric {mid}" in why])
        fill_cells(row, lr, columns, excluded)
        row.reasons += [r for mid in spec.columns for src, r in excluded.get(mid, {}).items() if src == str(lr.path)]
        rows.append(row)
    sort_col = next(c for c in columns if c.id == spec.sort.metric)
    descending = (spec.sort.order or ("desc" if sort_col.higher_is_better else "asc")) == "desc"
    ranked = [r for r in rows if r.eligible]
    ranked.sort(key=lambda r: (-(r.cells[sort_col.id].value or 0.0) if descending
                               else (r.cells[sort_col.id].value or 0.0), r.label, r.run_fingerprint))
    previous: float | None = None
    for position, row in enumerate(ranked, start=1):
        value = row.cells[sort_col.id].value
        row.rank = ranked[position - 2].rank if position > 1 and value == previous else position
        previous = value
    unranked = sorted((r for r in rows if not r.eligible), key=lambda r: (r.label, r.run_fingerprint))
    n = {lr.record.predictions.n_expected for lr in records}
    refs = spec.dataset.references_sha256 or next(
        (str(lr.record.dataset.get("references_sha256")) for lr in records), "")
    subtitle = (f"Board {spec.board} v{spec.version}: {spec.dataset.name} / {spec.dataset.split}"
                + (f", n={n.pop()} studies" if len(n) == 1 else "")
                + (f", references sha256 {refs[:12]}" if refs else "")
                + f"; ranked by {sort_col.display} ({'descending' if descending else 'ascending'}).")
    table = Table(title=spec.title, columns=columns, rows=ranked + unranked, show_ci=spec.show_ci,
                  subtitle=subtitle, notes=list(spec.notes), sort_metric=sort_col.id, ranked=True)
    mark_best(table)
    return table


# ---------------------------------------------------------------- files


def provenance(spec: BoardSpec, records: Sequence[LoadedRecord], table: Table, files: dict[str, bytes],
               matplotlib_version: str | None) -> dict:
    from rrg_bench import __version__

    by_source = {r.source: r for r in table.rows}
    return {
        "board": spec.board,
        "version": spec.version,
        "spec_sha256": spec.spec_sha256,
        "spec": spec.model_dump(mode="json"),
        "built_with": {"harness": ".".join(__version__.split(".")[:2]), "matplotlib": matplotlib_version},
        "records": [{
            "file": lr.path.name,
            "sha256": sha256_file(lr.path),
            "run_fingerprint": lr.record.run_fingerprint,
            "generation_fingerprint": lr.record.generation_fingerprint,
            "record_id": lr.record.record_id,
            "generator": lr.record.generator.get("name"),
            "harness": {k: lr.record.harness.get(k) for k in ("version", "git_commit", "git_dirty")},
            "predictions_sha256": lr.record.predictions.sha256,
            "references_sha256": lr.record.dataset.get("references_sha256"),
            "ranked": by_source[lr.path.name].eligible,
            "rank": by_source[lr.path.name].rank,
            "reasons": by_source[lr.path.name].reasons,
        } for lr in records],
        "files": {name: _sha(data) for name, data in sorted(files.items())},
    }


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def board_files(spec: BoardSpec, layout: BoardLayout, *, plots: bool = True) -> dict[str, bytes]:
    """Every file of the board's version directory, in memory."""
    records = [load(p) for p in layout.record_files(spec.board)]
    if not records:
        raise BenchError(f"board {spec.board!r} has no records in {layout.records_dir(spec.board)}; "
                         "add one with `bench leaderboard add RECORD.json`")
    for lr in records:
        _check_belongs(spec, lr)
    problems = [problem for lr in records for problem in recompute_problems(lr)]
    if problems:
        raise RegressionFound(f"board {spec.board!r}: published values must follow from the records' per-study "
                              "statistics: " + "; ".join(problems))
    table = board_table(spec, records)
    files: dict[str, bytes] = {}
    for name in TABLE_FILES:
        fmt = name.rsplit(".", 1)[1]
        text = to_latex(table, label=f"tab:{spec.board}") if fmt == "tex" else RENDERERS[fmt](table)
        files[name] = text.encode("utf-8")
    mpl_version = None
    if plots:
        from rrg_bench.leaderboard.plots import board_plots, matplotlib_version

        files.update(board_plots(table, spec.headline, spec.plots.per_label, spec.plots.per_label_value))
        mpl_version = matplotlib_version()
    files[PROVENANCE] = dumps(provenance(spec, records, table, files, mpl_version)).encode("utf-8")
    return files


# ---------------------------------------------------------------- publishing


def changelog_mentions(layout: BoardLayout, board: str, version: int) -> bool:
    if not layout.changelog.is_file():
        return False
    pattern = re.compile(rf"(?<![\w.-]){re.escape(board)}(?![\w.-]).*\bv{version}\b")
    return any(pattern.search(line) for line in layout.changelog.read_text(encoding="utf-8").splitlines())


def differences(expected: dict[str, bytes], folder: Path) -> list[str]:
    """File names that differ between the in-memory build and a directory (missing, extra, changed)."""
    present = {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()
    diffs = [f"{name}: missing" for name in sorted(set(expected) - present)]
    diffs += [f"{name}: not produced by the build" for name in sorted(present - set(expected))]
    diffs += [f"{name}: content differs" for name in sorted(set(expected) & present)
              if (folder / name).read_bytes() != expected[name]]
    return diffs


@dataclass
class BuildResult:
    board: str
    version: int
    directory: Path
    state: str  # "written" | "unchanged"
    files: list[str] = field(default_factory=list)


def write_directory(files: dict[str, bytes], target: Path) -> None:
    """Write all files into a fresh directory atomically (temp dir + rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a published board from other users
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def build(layout: BoardLayout, board: str, *, plots: bool = True) -> BuildResult:
    spec = layout.load(board)
    files = board_files(spec, layout, plots=plots)
    target = layout.tables_dir(board, spec.version)
    if target.exists():
        diffs = differences(files, target)
        if diffs:
            raise BenchError(
                f"{target} is published and this build differs ({'; '.join(diffs)}). Published versions are "
                f"immutable: set 'version: {spec.version + 1}' in {layout.board_file(board)} and add a line "
                f"'{board} v{spec.version + 1}: <what changed>' to {layout.changelog}"
            )
        return BuildResult(board, spec.version, target, "unchanged", sorted(files))
    if not changelog_mentions(layout, board, spec.version):
        raise BenchError(f"{layout.changelog} has no line for '{board} v{spec.version}'; add one saying what this "
                         "version contains, then build again")
    write_directory(files, target)
    return BuildResult(board, spec.version, target, "written", sorted(files))


def check(layout: BoardLayout, boards: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Rebuild each board into a temporary directory and compare with the committed one.

    Returns the differences per board (empty lists when everything matches).
    """
    result: dict[str, list[str]] = {}
    for board in boards or layout.board_names():
        spec = layout.load(board)
        committed = layout.tables_dir(board, spec.version)
        problems: list[str] = published_versions_intact(layout, board, spec.version)
        if not changelog_mentions(layout, board, spec.version):
            problems.append(f"{layout.changelog.name}: no line for '{board} v{spec.version}'")
        try:
            files = board_files(spec, layout)
        except RegressionFound as exc:
            result[board] = problems + [str(exc)]
            continue
        with tempfile.TemporaryDirectory(prefix="bench-board-check-") as tmp:
            rebuilt = Path(tmp) / f"v{spec.version}"
            write_directory(files, rebuilt)
            if not committed.is_dir():
                problems.append(f"{committed}: not built (run `bench leaderboard build {board}`)")
            else:
                names = sorted(p.name for p in rebuilt.iterdir())
                match, mismatch, errors = filecmp.cmpfiles(rebuilt, committed, names,
                                                           shallow=False)
                problems += [f"{committed / n}: content differs from a rebuild" for n in mismatch]
                problems += [f"{committed / n}: missing" for n in errors]
                extra = sorted({p.name for p in committed.iterdir()} - {p.name for p in rebuilt.iterdir()})
                problems += [f"{committed / n}: not produced by the build" for n in extra]
        result[board] = problems
    return result


def published_versions_intact(layout: BoardLayout, board: str, current: int) -> list[str]:
    """Older published versions cannot be rebuilt by a newer harness, but they must stay as published:
    every file must still hash to what its ``provenance.json`` recorded, and none may be added."""
    problems: list[str] = []
    base = layout.root / "tables" / board
    for folder in sorted(base.glob("v*")) if base.is_dir() else []:
        if folder.name == f"v{current}" or not folder.is_dir():
            continue
        try:
            recorded = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError) as exc:
            problems.append(f"{folder / PROVENANCE}: unreadable ({exc})")
            continue
        present = {p.name for p in folder.iterdir() if p.is_file()} - {PROVENANCE}
        problems += [f"{folder / n}: missing" for n in sorted(set(recorded) - present)]
        problems += [f"{folder / n}: not in its provenance" for n in sorted(present - set(recorded))]
        problems += [f"{folder / n}: changed since it was published" for n in sorted(present & set(recorded))
                     if _sha((folder / n).read_bytes()) != recorded[n]]
    return problems


def raise_on_check(result: dict[str, list[str]]) -> None:
    bad = {b: p for b, p in result.items() if p}
    if bad:
        raise RegressionFound("leaderboard check failed: " + "; ".join(
            f"{board}: {', '.join(problems)}" for board, problems in bad.items()))
