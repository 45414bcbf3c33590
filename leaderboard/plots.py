"""Bar charts with CI whiskers and a per-label F1 heatmap, rendered byte-for-byte reproducibly.

``bench leaderboard check`` compares plots byte for byte, so nothing machine- or
time-dependent may reach the files: matplotlib's defaults are restored (a user's
matplotlibrc is ignored), the font is the DejaVu Sans that ships inside matplotlib, SVG
text is drawn as paths with a fixed ``svg.hashsalt`` (stable element ids), and the
Software/Creator/Date metadata are dropped. The matplotlib version is recorded in the
board's provenance because its rasteriser can change pixels between releases.
"""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from typing import Any, Iterator

from rrg_bench.leaderboard.table import Table, TableColumn, TableRow, format_value

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "svg.hashsalt": "rrg-bench",
    "svg.fonttype": "path",
    "figure.dpi": 100.0,
    "savefig.dpi": 150.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
BAR_COLOUR = "#3b6ea5"


def plot_name(metric_id: str) -> str:
    """``bleu4[tok=ptb]`` -> ``bleu4-tok=ptb`` (file-name safe, still readable)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", metric_id).strip("-")


@contextmanager
def _defaults() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(RC)
        yield


def _save(fig: Any, stem: str) -> dict[str, bytes]:
    out = {}
    for fmt, meta in (("png", PNG_METADATA), ("svg", SVG_METADATA)):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata=meta, bbox_inches=None)
        out[f"{stem}.{fmt}"] = buf.getvalue()
    return out


def bar_chart(table: Table, col: TableColumn) -> dict[str, bytes]:
    """Ranked rows' values of one metric with asymmetric 95% CI whiskers."""
    from matplotlib.figure import Figure

    rows = [r for r in (table.ranked_rows if table.ranked else table.rows)
            if r.cells.get(col.id) is not None and r.cells[col.id].value is not None]
    if not rows:  # an empty chart says nothing; the table already shows the column is empty
        return {}
    with _defaults():
        width = max(4.8, 1.1 * len(rows) + 2.4)
        fig = Figure(figsize=(width, 3.8))
        ax = fig.add_subplot()
        xs = list(range(len(rows)))
        values = [r.cells[col.id].value for r in rows]
        lower = [max(0.0, v - (r.cells[col.id].ci95 or (v, v))[0]) for v, r in zip(values, rows)]
        upper = [max(0.0, (r.cells[col.id].ci95 or (v, v))[1] - v) for v, r in zip(values, rows)]
        ax.bar(xs, values, color=BAR_COLOUR, width=0.6, yerr=[lower, upper], capsize=4,
               error_kw={"elinewidth": 1.0, "ecolor": "#1d2430"})
        for x, v, up in zip(xs, values, upper):
            ax.annotate(format_value(v, col.decimals), (x, v + up), textcoords="offset points", xytext=(0, 3),
                        ha="center", va="bottom", fontsize=8)
        rotate = len(rows) > 4
        ax.set_xticks(xs, [r.label for r in rows], rotation=25 if rotate else 0, ha="right" if rotate else "center")
        ax.set_ylabel(f"{col.display} ({'higher' if col.higher_is_better else 'lower'} is better)")
        top = max([v + u for v, u in zip(values, upper)] or [1.0])
        ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
        ax.set_title(col.display, fontsize=10, loc="center", pad=16)
        ax.text(0.5, 1.02, col.id, transform=ax.transAxes, ha="center", va="bottom", fontsize=7.5, color="#55606e")
        skipped = [r.label for r in table.unranked_rows] if table.ranked else []
        foot = "Whiskers: 95% bootstrap CI."
        if skipped:
            foot += " Not ranked, not shown: " + ", ".join(skipped) + "."
        fig.text(0.01, 0.01, foot, fontsize=7, color="#55606e", ha="left", va="bottom")
        fig.subplots_adjust(left=0.14, right=0.98, top=0.86, bottom=0.30 if rotate else 0.17)
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


def per_label_heatmap(table: Table, col: TableColumn, value_key: str = "f1") -> dict[str, bytes]:
    """Rows = runs (ranked first; unranked marked †), columns = labels, cells = per-label value."""
    import numpy as np
    from matplotlib.figure import Figure

    rows: list[TableRow] = [r for r in table.rows if r.cells[col.id].per_label]
    labels = label_order({name for r in rows for name in (r.cells[col.id].per_label or {})})
    matrix = np.full((len(rows), len(labels)), np.nan)
    for i, r in enumerate(rows):
        per = r.cells[col.id].per_label or {}
        for j, name in enumerate(labels):
            if name in per and value_key in per[name]:
                matrix[i, j] = float(per[name][value_key])
    with _defaults():
        fig = Figure(figsize=(max(6.0, 0.62 * len(labels) + 3.0), max(3.2, 0.42 * len(rows) + 2.8)))
        ax = fig.add_subplot()
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        for i in range(len(rows)):
            for j in range(len(labels)):
                v = matrix[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 0.55 else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), [r.label + ("" if r.eligible else " †") for r in rows], fontsize=8)
        ax.spines[:].set_visible(False)
        cbar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
        name = {"f1": "F1"}.get(value_key, value_key)
        cbar.set_label(f"per-label {name}")
        ax.set_title(f"Per-label {name} — {col.display} ({col.id})", fontsize=10)
        # rotated long labels ("Enlarged Cardiomediastinum") reach left of the first column
        fig.subplots_adjust(left=0.2, right=0.97, top=0.9, bottom=0.45)
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
