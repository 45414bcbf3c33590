"""What ``bench compare`` prints: a terminal table, a GitHub Markdown table, or JSON for scripts.

A comparison is read in three places: a terminal, a CI log (no TTY, any width) and a pull
request comment or a script. All three are rendered from the same rows, so the verdict a PR
comment shows is the one the exit code gave. Numbers are never shortened: the terminal table
takes the width it needs when stdout is not a terminal, and only the metric id may fold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rrg_bench.compare import ALPHA, Comparison, MetricDelta

FORMATS = ("table", "md", "json")
CAPTION = ("Δ, its paired-bootstrap 95% CI and p (boot) and the approximate-randomisation p (AR) compare the "
           "same studies; tol = allowed drop.")


@dataclass(frozen=True)
class DeltaRow:
    delta: MetricDelta
    tolerance: float
    #: "regression" | "drop (n.s.)" | "better" | "ok"
    status: str
    decimals: int


def delta_rows(comparison: Comparison, tolerances: Any, failed: set[str],
               decimals: int | None = None) -> list[DeltaRow]:
    """One row per compared metric, in the order papers print them (as ``bench table`` does)."""
    from rrg_bench.leaderboard.columns import conventional_order

    by_id = {d.metric_id: d for d in comparison.deltas}
    rows = []
    for d in (by_id[m] for m in conventional_order(list(by_id), [comparison.base, comparison.new])):
        tol = tolerances.for_metric(d.metric_id)
        if d.metric_id in failed:
            status = "regression"
        elif d.drop > tol:
            status = "drop (n.s.)"
        elif d.drop < 0:
            status = "better"
        else:
            status = "ok"
        rows.append(DeltaRow(d, tol, status, d.decimals if decimals is None else decimals))
    return rows


def _names(comparison: Comparison) -> tuple[str, str]:
    """System names; the short fingerprints only when both runs carry the same name (a re-run)."""
    a, b = comparison.base, comparison.new
    if a.label == b.label:
        return f"{a.label} ({a.short_fingerprint})", f"{b.label} ({b.short_fingerprint})"
    return a.label, b.label


def title(comparison: Comparison) -> str:
    base, new = _names(comparison)
    ds = comparison.base.record.dataset
    n = comparison.base.record.predictions.n_expected
    return f"{new} vs {base} — {ds.get('name')}/{ds.get('split')}, n={n}"


def _num(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _p(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _ci(row: DeltaRow) -> str:
    ci = row.delta.ci95
    return "–" if ci is None else f"[{_num(ci[0], row.decimals, True)}, {_num(ci[1], row.decimals, True)}]"


def cells(row: DeltaRow) -> list[str]:
    """base, new, Δ, CI of Δ, p boot, p AR, tol: the numeric cells every text format shows."""
    d = row.delta
    return [_num(d.base, row.decimals), _num(d.new, row.decimals), _num(d.delta, row.decimals, True), _ci(row),
            _p(d.p_bootstrap), _p(d.p_randomisation), f"{row.tolerance:g}"]


HEAD = ["base", "new", "Δ new−base", "95% CI of Δ", "p boot", "p AR", "tol"]


# ---------------------------------------------------------------- terminal


def rich_table(comparison: Comparison, rows: Sequence[DeltaRow]) -> Any:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    styles = {"regression": "[bold red]REGRESSION[/bold red]", "drop (n.s.)": "[yellow]drop (n.s.)[/yellow]",
              "better": "[green]better[/green]", "ok": "ok"}
    table = Table(title=escape(title(comparison)), title_justify="left", box=box.SIMPLE_HEAD,
                  caption=CAPTION, caption_justify="left")
    table.add_column("metric", justify="left", overflow="fold")
    for name in HEAD:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("", justify="left", no_wrap=True)
    for row in rows:
        table.add_row(escape(row.delta.metric_id), *cells(row), styles[row.status])
    return table


def print_table(table: Any) -> None:
    """Print on stdout without ever shortening a number: as wide as the table needs when stdout is
    not a terminal (CI logs, pipes; COLUMNS is ignored there), else folding only metric ids."""
    from rich.console import Console
    from rich.measure import Measurement

    probe = Console(width=100_000)
    natural = Measurement.get(probe, probe.options, table)
    console = Console()
    width = max(console.width, natural.minimum) if console.is_terminal else natural.maximum
    Console(width=width).print(table)


# ---------------------------------------------------------------- Markdown (GitHub)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _short_names(rows: Sequence[DeltaRow]) -> list[str]:
    """Display names, naming the convention where two compared metrics share one."""
    from rrg_bench.leaderboard.columns import disambiguate
    from rrg_bench.leaderboard.table import TableColumn

    columns = [TableColumn(r.delta.metric_id, r.delta.display, "", True, 0, "", "") for r in rows]
    return [c.display for c in disambiguate(columns)]


def to_markdown(comparison: Comparison, rows: Sequence[DeltaRow], verdict: str) -> str:
    """A GitHub table narrow enough for a PR comment: short metric names in the table, their exact
    ids in a collapsed list under it."""
    status = {"regression": "**REGRESSION**", "drop (n.s.)": "drop (n.s.)", "better": "better", "ok": "ok"}
    names = _short_names(rows)
    lines = [f"### {_md(title(comparison))}", "",
             "| Metric | " + " | ".join(HEAD) + " | status |", "|:---|" + "---:|" * len(HEAD) + ":---|"]
    for row, name in zip(rows, names):
        shown = [_md(c).replace(", ", ",\u00a0") for c in cells(row)]  # a CI interval never wraps inside
        lines.append(f"| {_md(name)} | " + " | ".join(shown) + f" | {status[row.status]} |")
    lines += ["", CAPTION, "", verdict, "", "<details><summary>Metric ids</summary>", "",
              "| Metric | id |", "|:---|:---|"]
    lines += [f"| {_md(name)} | `{row.delta.metric_id}` |" for row, name in zip(rows, names)]
    lines += ["", "</details>"]
    extra = list(comparison.notes)
    if comparison.only_in_base or comparison.only_in_new:
        extra.append(f"not compared: only in base {comparison.only_in_base}, only in new {comparison.only_in_new}")
    if extra:
        lines += [""] + [f"- {_md(n)}" for n in extra]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- JSON


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _side(lr: Any) -> dict[str, Any]:
    return {"path": str(lr.path), "system": lr.label, "run_fingerprint": lr.record.run_fingerprint,
            "record_id": lr.record.record_id}


def to_json(comparison: Comparison, rows: Sequence[DeltaRow], *, regressions: Sequence[Any], fail_on: str,
            tolerance_source: str) -> str:
    """Full precision, finite numbers only (NaN becomes null), so any JSON parser reads it."""
    ds = comparison.base.record.dataset
    doc = {
        "base": _side(comparison.base),
        "new": _side(comparison.new),
        "dataset": {"name": ds.get("name"), "split": ds.get("split"), "references_sha256": ds.get("references_sha256"),
                    "n": comparison.base.record.predictions.n_expected},
        "test": {"n_boot": comparison.n_boot, "n_trials": comparison.n_trials, "seed": comparison.seed,
                 "alpha": ALPHA, "fail_on": fail_on, "tolerances": tolerance_source},
        "metrics": [{
            "id": r.delta.metric_id, "display": r.delta.display, "higher_is_better": r.delta.higher_is_better,
            "base": _finite(r.delta.base), "new": _finite(r.delta.new), "delta": _finite(r.delta.delta),
            "ci95": None if r.delta.ci95 is None else [_finite(v) for v in r.delta.ci95],
            "p_bootstrap": _finite(r.delta.p_bootstrap), "p_randomisation": _finite(r.delta.p_randomisation),
            "tolerance": r.tolerance, "status": r.status,
        } for r in rows],
        "only_in_base": list(comparison.only_in_base),
        "only_in_new": list(comparison.only_in_new),
        "notes": list(comparison.notes),
        "regression": bool(regressions),
        "regressions": [{"id": r.delta.metric_id, "reason": r.reason} for r in regressions],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
