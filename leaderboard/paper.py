"""Ad-hoc paper tables: ``bench table RECORDS... [--baseline RECORD]``.

Rows are the given runs, columns their metric ids (a metric under another convention is
another column, never merged). With a baseline, each other row's cell is marked when the
paired bootstrap on the per-study statistics says it differs from the baseline — the
same test ``bench compare`` uses, so a table and a CI gate never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from rrg_bench.compare import ALPHA, LoadedRecord, ScorerFactory, check_same_references, paired_tests, registry_scorer
from rrg_bench.errors import UsageError
from rrg_bench.leaderboard.columns import conventional_order, disambiguate
from rrg_bench.leaderboard.table import (
    Table,
    TableRow,
    columns_for,
    fill_cells,
    mark_best,
    row_labels,
    with_decimals,
)

MARKER = "*"


def _same(a: LoadedRecord, b: LoadedRecord) -> bool:
    return a.path.resolve() == b.path.resolve()


def paper_table(records: Sequence[LoadedRecord], *, baseline: LoadedRecord | None = None,
                metric_ids: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA,
                show_ci: bool = True, decimals: int | None = None,
                scorer_factory: ScorerFactory = registry_scorer) -> Table:
    """Columns follow ``metric_ids`` when given, else the papers' order (see ``leaderboard.columns``);
    ``decimals`` overrides every metric's own number of places."""
    records = list(records)
    if not records and baseline is None:
        raise UsageError("give at least one record (results.json or run directory)")
    if baseline is not None and not any(_same(baseline, r) for r in records):
        records.insert(0, baseline)
    check_same_references(records)
    if metric_ids:
        unknown = [m for m in metric_ids if not any(m in r.record.metrics for r in records)]
        if unknown:
            raise UsageError(f"no record has metric(s) {', '.join(unknown)}")
        ids = list(metric_ids)
    else:
        ids = conventional_order(list(dict.fromkeys(m for r in records for m in r.record.metrics)), records)
    columns, excluded, _ = columns_for(ids, records, [True] * len(records))
    columns = disambiguate(with_decimals(columns, decimals))
    rows = []
    for lr, label in zip(records, row_labels(records)):
        row = TableRow(label=label, run_fingerprint=lr.record.run_fingerprint, source=str(lr.path),
                       baseline=baseline is not None and _same(lr, baseline),
                       unofficial=bool(lr.record.generator.get("unofficial")))
        fill_cells(row, lr, columns, excluded)
        rows.append(row)
        if baseline is None or row.baseline or n_boot <= 0:
            continue
        scorers = sorted({lr.record.metrics[c.id].scorer for c in columns
                          if c.id in lr.record.metrics and c.id in baseline.record.metrics})
        for spec in scorers:
            tests = paired_tests(baseline, lr, spec, n_boot=n_boot, n_trials=0, seed=seed,
                                 scorer_factory=scorer_factory)
            for col in columns:
                if col.id in tests and row.cells[col.id].value is not None:
                    p = float(tests[col.id][0].p_value)
                    row.cells[col.id].p_value = p
                    row.cells[col.id].marker = MARKER if p < alpha else ""
    ds = records[0].record.dataset
    legend = ""
    if baseline is not None and n_boot > 0:
        legend = (f"{MARKER} differs from the baseline {rows[[r.baseline for r in rows].index(True)].label} "
                  f"(paired bootstrap, {n_boot} resamples, p < {alpha:g})")
    table = Table(
        title=f"Results on {ds.get('name')} / {ds.get('split')}",
        columns=columns, rows=rows, show_ci=show_ci, ranked=False, marker_legend=legend,
        subtitle=f"n={records[0].record.predictions.n_expected} studies, references sha256 "
                 f"{str(ds.get('references_sha256'))[:12]}.",
    )
    mark_best(table)
    return table
