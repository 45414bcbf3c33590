"""Bar charts with CI whiskers and a per-label F1 heatmap, rendered byte-for-byte reproducibly.

``bench leaderboard check`` compares plots byte for byte, so nothing machine- or
time-dependent may reach the files: matplotlib's defaults are restored (a user's
matplotlibrc is ignored), the font is the DejaVu Sans that ships inside matplotlib, SVG
element ids use a fixed ``svg.hashsalt``, and the Software/Creator/Date metadata are
dropped. SVG text stays text (``svg.fonttype: none``) so a reader can search and copy
system and metric names. The matplotlib version is recorded in the board's provenance
because its rasteriser can change pixels between releases.

Layout choices, each for legibility: bars are horizontal so long system names read without
rotation; the values and their CIs stand in their own column right of the plot, never on a
whisker; the heatmap has one row per label (names read horizontally) and one column per
system, with a size that follows its content so no area stays blank.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from rrg_bench.leaderboard.table import Table, TableColumn, TableRow, format_value

RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "svg.hashsalt": "rrg-bench",
    "svg.fonttype": "none",
    "figure.dpi": 100.0,
    "savefig.dpi": 150.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
BAR_COLOUR = "#3b6ea5"
UNOFFICIAL_COLOUR = "#a9c1dc"
INK = "#1d2430"
MUTED = "#55606e"
NO_SUPPORT = "#e4e7ec"


def plot_name(metric_id: str) -> str:
    """``bleu4[tok=ptb]`` -> ``bleu4-tok=ptb`` (file-name safe, still readable)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", metric_id).strip("-")


@contextmanager
def _defaults() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(cast(Any, RC))  # matplotlib types its keys as literals
        yield


def _save(fig: Any, stem: str) -> dict[str, bytes]:
    out = {}
    for fmt, meta in (("png", PNG_METADATA), ("svg", SVG_METADATA)):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=meta, bbox_inches=None)
        out[f"{stem}.{fmt}"] = buf.getvalue()
    return out


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text


def _footer(fig: Any, text: str) -> None:
    """A small note under the figure, wrapped to the figure's width (about 17 characters per inch at 7 pt)."""
    fig.supxlabel(_wrap(text, int(fig.get_figwidth() * 17)), x=0.01, ha="left", fontsize=7, color=MUTED)


def bar_chart(table: Table, col: TableColumn) -> dict[str, bytes]:
    """Ranked rows' values of one metric with asymmetric 95% CI whiskers, best-ranked on top."""
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    rows = [r for r in (table.ranked_rows if table.ranked else table.rows)
            if r.cells.get(col.id) is not None and r.cells[col.id].value is not None]
    if not rows:  # an empty chart says nothing; the table already shows the column is empty
        return {}
    cells = [r.cells[col.id] for r in rows]
    values = [float(c.value) for c in cells]  # type: ignore[arg-type]
    lows = [c.ci95[0] if c.ci95 else v for c, v in zip(cells, values)]
    highs = [c.ci95[1] if c.ci95 else v for c, v in zip(cells, values)]
    with _defaults():
        fig = Figure(figsize=(7.2, 1.45 + 0.42 * len(rows)), layout="constrained")
        ax = fig.add_subplot()
        ys = list(range(len(rows)))
        ax.barh(ys, values, height=0.62, color=[UNOFFICIAL_COLOUR if r.unofficial else BAR_COLOUR for r in rows],
                hatch=["///" if r.unofficial else "" for r in rows], edgecolor=BAR_COLOUR, linewidth=0.0,
                xerr=[[max(0.0, v - lo) for v, lo in zip(values, lows)],
                      [max(0.0, hi - v) for v, hi in zip(values, highs)]],
                capsize=3, error_kw={"elinewidth": 1.0, "ecolor": INK})
        ax.set_yticks(ys, [_wrap(r.label, 30) for r in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)  # rank 1 at the top
        ax.set_xlim(min(0.0, *lows), max(max(highs) * 1.04, 1e-9) if max(highs) > 0 else 1.0)
        ax.set_xlabel(f"{col.display} ({'higher' if col.higher_is_better else 'lower'} is better)")
        ax.xaxis.grid(True, color=NO_SUPPORT, linewidth=0.8)
        ax.set_axisbelow(True)
        column = blended_transform_factory(ax.transAxes, ax.transData)
        ax.text(1.03, -0.5, "value [95% CI]", transform=column, ha="left", va="bottom", fontsize=7.5, color=MUTED)
        for y, v, lo, hi in zip(ys, values, lows, highs):
            ax.text(1.03, y, f"{format_value(v, col.decimals)}  [{format_value(lo, col.decimals)}, "
                    f"{format_value(hi, col.decimals)}]", transform=column, ha="left", va="center", fontsize=8.5)
        ax.set_title(col.display, loc="left", fontsize=11, fontweight="bold", pad=15)
        ax.text(0.0, 1.02, col.id, transform=ax.transAxes, ha="left", va="bottom", fontsize=7.5, color=MUTED)
        foot = "Whiskers: 95% bootstrap CI."
        if any(r.unofficial for r in rows):
            foot += " Hatched: unofficial re-implementation."
        skipped = [r.label for r in table.unranked_rows] if table.ranked else []
        if skipped:
            foot += " Not ranked, not shown: " + ", ".join(skipped) + "."
        _footer(fig, foot)
        return _save(fig, f"bar_{plot_name(col.id)}")


def per_label_source(table: Table, preferred: str | None) -> TableColumn | None:
    """The column whose per-label values feed the heatmap (the preferred one, else the first)."""
    candidates = [c for c in table.columns if any(r.cells[c.id].per_label for r in table.rows)]
    if preferred is not None:
        return next((c for c in candidates if c.id == preferred), None)
    return candidates[0] if candidates else None


def label_order(names: set[str]) -> list[str]:
    """CheXpert's canonical label order when the names are CheXpert labels (records store
    per-label values with sorted keys), else alphabetical."""
    from rrg_bench.metrics.common.labels import CHEXPERT_LABELS

    known = [n for n in CHEXPERT_LABELS if n in names]
    return known + sorted(names - set(known))


def _support(rows: list[TableRow], col: TableColumn, labels: list[str]) -> dict[str, float]:
    """Per label, the number of positive references, when every row agrees on it (same references)."""
    out: dict[str, float] = {}
    for name in labels:
        seen = {(r.cells[col.id].per_label or {}).get(name, {}).get("support") for r in rows} - {None}
        if len(seen) == 1:
            out[name] = float(seen.pop())  # type: ignore[arg-type]
    return out


def per_label_heatmap(table: Table, col: TableColumn, value_key: str = "f1") -> dict[str, bytes]:
    """Rows = labels, columns = systems (ranked first; unranked marked †), cells = per-label value.

    A label no reference is positive for (support 0) has no defined F1: its cells are grey and
    say so, instead of a 0.00 that would read as a failure of every system.
    """
    import numpy as np
    from matplotlib.figure import Figure

    rows: list[TableRow] = [r for r in table.rows if r.cells[col.id].per_label]
    labels = label_order({name for r in rows for name in (r.cells[col.id].per_label or {})})
    support = _support(rows, col, labels)
    matrix = np.full((len(labels), len(rows)), np.nan)
    for j, r in enumerate(rows):
        per = r.cells[col.id].per_label or {}
        for i, name in enumerate(labels):
            if name in per and value_key in per[name] and support.get(name) != 0:
                matrix[i, j] = float(per[name][value_key])
    name = {"f1": "F1"}.get(value_key, value_key)
    with _defaults():
        fig = Figure(figsize=(max(6.2, 3.6 + 1.05 * len(rows)), 1.9 + 0.3 * len(labels)), layout="constrained")
        ax = fig.add_subplot()
        ax.set_facecolor(NO_SUPPORT)
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        for i in range(len(labels)):
            for j in range(len(rows)):
                v = matrix[i, j]
                text, colour = (f"{v:.2f}", "white" if v < 0.55 else "black") if np.isfinite(v) else ("–", MUTED)
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(range(len(rows)), [_wrap(r.label + ("" if r.eligible else " †"), 16) for r in rows], fontsize=8)
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(labels)), [f"{n} ({support[n]:g})" if n in support else n for n in labels],
                      fontsize=8.5)
        ax.set_xticks([x - 0.5 for x in range(1, len(rows))], minor=True)
        ax.set_yticks([y - 0.5 for y in range(1, len(labels))], minor=True)
        ax.grid(which="minor", color="white", linewidth=1.2)
        ax.tick_params(which="both", length=0)
        ax.spines[:].set_visible(False)
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, aspect=30).set_label(f"per-label {name}")
        ax.set_title(f"Per-label {name}: {col.display}", loc="left", fontsize=11, fontweight="bold", pad=8)
        foot = [f"Metric {col.id}.", "(n): reference studies positive for the label."]
        if 0 in support.values():
            foot.append(f"–: no positive reference, {name} undefined (0 under zero_division=0).")
        if not all(r.eligible for r in rows):
            foot.append("†: not ranked.")
        _footer(fig, " ".join(foot))
        return _save(fig, f"per_label_{plot_name(col.id)}")


def board_plots(table: Table, headline: list[str], per_label: str | None, value_key: str = "f1") -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    by_id = {c.id: c for c in table.columns}
    for mid in headline:
        if mid in by_id:
            files.update(bar_chart(table, by_id[mid]))
    source = per_label_source(table, per_label)
    if source is not None:
        files.update(per_label_heatmap(table, source, value_key))
    return files


def matplotlib_version() -> str:
    import matplotlib

    return matplotlib.__version__
