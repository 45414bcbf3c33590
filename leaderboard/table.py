"""The table model every output format is rendered from, and the rules that fill it.

Two producers fill it: a board (eligibility, ranking, one signature per column) and an
ad-hoc paper table (rows = the records given, significance against a baseline). Keeping
the model separate from the renderers means md, tex, csv, json, html and the plots can
never disagree about which number sits in which cell.

Column rule: a column holds one metric id computed one way. Metric ids already carry the
convention (``bleu4[tok=ptb]``); in addition the scorer spec, convention text, metric
version and implementation facts must agree across the rows that fill a column. When
ranked rows disagree the build fails naming the records and the differing fields; an
unranked row's disagreeing cell is left empty and the reason is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rrg_bench.errors import BenchError
from rrg_bench.records import LoadedRecord, MetricValue
from rrg_bench.records.columns import metric_family, metric_signature, signature_differences


@dataclass(frozen=True)
class TableColumn:
    id: str
    display: str
    convention: str
    higher_is_better: bool
    decimals: int
    metric_version: str
    scorer: str

    @classmethod
    def from_metric(cls, metric_id: str, m: MetricValue) -> TableColumn:
        return cls(metric_id, m.display, m.convention, m.higher_is_better, m.decimals, m.metric_version, m.scorer)


@dataclass
class TableCell:
    value: float | None = None
    ci95: tuple[float, float] | None = None
    bold: bool = False
    marker: str = ""
    p_value: float | None = None
    per_label: dict[str, dict[str, float]] | None = None


@dataclass
class TableRow:
    label: str
    run_fingerprint: str
    source: str  # the record's file name (board) or path (ad-hoc)
    eligible: bool = True
    rank: int | None = None
    reasons: list[str] = field(default_factory=list)
    cells: dict[str, TableCell] = field(default_factory=dict)
    baseline: bool = False
    #: a re-implementation its paper's authors never released: every label of the row says so
    unofficial: bool = False
    #: board columns the record has no value for at all (summarised in one footnote clause)
    missing: list[str] = field(default_factory=list)


@dataclass
class Table:
    title: str
    columns: list[TableColumn]
    rows: list[TableRow]
    show_ci: bool = True
    subtitle: str = ""
    notes: list[str] = field(default_factory=list)
    sort_metric: str | None = None
    marker_legend: str = ""
    ranked: bool = True

    @property
    def ranked_rows(self) -> list[TableRow]:
        return [r for r in self.rows if r.eligible]

    @property
    def unranked_rows(self) -> list[TableRow]:
        return [r for r in self.rows if not r.eligible]


def format_value(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0000"


def half_width(ci: tuple[float, float] | None) -> float | None:
    return None if ci is None else (ci[1] - ci[0]) / 2


def row_labels(records: Sequence[LoadedRecord]) -> list[str]:
    """System names (``LoadedRecord.label``: the display name, marked when unofficial), with the short
    fingerprint added only where two rows share a name."""
    names = [r.label for r in records]
    return [f"{n} ({r.short_fingerprint})" if names.count(n) > 1 else n for n, r in zip(names, records)]


def with_decimals(columns: Sequence[TableColumn], decimals: int | None) -> list[TableColumn]:
    """The columns, every one shown with ``decimals`` places (``None``: each metric's own)."""
    return [replace(c, decimals=decimals) if decimals is not None else c for c in columns]


def mark_best(table: Table) -> None:
    """Bold the best *displayed* value per column among ranked rows (ties all bold)."""
    rows = table.ranked_rows if table.ranked else table.rows
    for col in table.columns:
        shown = [(format_value(c.value, col.decimals), c) for r in rows
                 if (c := r.cells.get(col.id)) is not None and c.value is not None]
        if not shown:
            continue
        pick = max if col.higher_is_better else min
        best = pick(float(text) for text, _ in shown)
        for text, cell in shown:
            cell.bold = float(text) == best


# ---------------------------------------------------------------- columns


def _signature_key(m: MetricValue, ignore_impl: Iterable[str]) -> str:
    from rrg_bench.hashing import canonical_json

    return canonical_json(metric_signature(m, ignore_impl))


def resolve_column(metric_id: str, entries: Sequence[tuple[LoadedRecord, bool]],
                   ignore_impl: Iterable[str] = ()) -> tuple[TableColumn | None, dict[str, str]]:
    """The column's one signature, and per record source the reason its value is left out.

    ``entries`` pairs each record with whether it is ranked. Ranked records that disagree
    are an error naming them; unranked records that disagree are left out of the column.
    """
    ignore_impl = list(ignore_impl)
    having = [(lr, ranked) for lr, ranked in entries if metric_id in lr.record.metrics]
    if not having:
        return None, {}
    ranked = [lr for lr, is_ranked in having if is_ranked]
    reference = ranked[0] if ranked else having[0][0]
    ref_metric = reference.record.metrics[metric_id]
    ref_key = _signature_key(ref_metric, ignore_impl)
    conflicts = [lr for lr in ranked if _signature_key(lr.record.metrics[metric_id], ignore_impl) != ref_key]
    if conflicts:
        other = conflicts[0]
        diffs = signature_differences(ref_metric, other.record.metrics[metric_id], ignore_impl=ignore_impl)
        raise BenchError(
            f"column {metric_id!r} would mix implementations: {reference.path.name} and {other.path.name} differ in "
            f"{'; '.join(diffs)}. Re-score one of them with the same implementation, or pin "
            "eligibility.metric_versions / list tolerated keys in eligibility.ignore_impl in the board"
        )
    excluded: dict[str, str] = {}
    for lr, _ in having:
        if _signature_key(lr.record.metrics[metric_id], ignore_impl) != ref_key:
            diffs = signature_differences(ref_metric, lr.record.metrics[metric_id], ignore_impl=ignore_impl)
            excluded[str(lr.path)] = f"{metric_id} not shown: computed differently from the column ({'; '.join(diffs)})"
    return TableColumn.from_metric(metric_id, ref_metric), excluded


def other_conventions(record: LoadedRecord, metric_id: str) -> list[str]:
    """Metric ids of the same family the record has instead (``bleu4[tok=r2gen]`` for ``bleu4[tok=ptb]``)."""
    family = metric_family(metric_id)
    return [m for m in record.record.metrics if metric_family(m) == family and m != metric_id]


def fill_cells(row: TableRow, record: LoadedRecord, columns: Sequence[TableColumn],
               excluded: dict[str, dict[str, str]]) -> None:
    for col in columns:
        m = record.record.metrics.get(col.id)
        if m is None or str(record.path) in excluded.get(col.id, {}):
            row.cells[col.id] = TableCell()
            continue
        row.cells[col.id] = TableCell(value=m.value, ci95=tuple(m.ci95) if m.ci95 else None,  # type: ignore[arg-type]
                                      per_label=m.per_label)


def columns_for(metric_ids: Sequence[str], records: Sequence[LoadedRecord], ranked: Sequence[bool],
                ignore_impl: Iterable[str] = ()) -> tuple[list[TableColumn], dict[str, dict[str, str]], list[str]]:
    """Resolve each metric id to a column; ids no record carries are returned as missing."""
    columns: list[TableColumn] = []
    excluded: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for mid in metric_ids:
        col, out = resolve_column(mid, list(zip(records, ranked)), ignore_impl)
        if col is None:
            missing.append(mid)
            continue
        columns.append(col)
        excluded[mid] = out
    return columns, excluded, missing


def json_ready(value: Any) -> Any:
    """Tuples to lists, recursively (json.dumps would do it, but explicit is safer for hashing)."""
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value
