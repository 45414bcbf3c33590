"""Render a :class:`leaderboard.table.Table` as Markdown, LaTeX, CSV, JSON and HTML.

Every renderer is a pure function of the table (no clock, no environment, no dict order
other than the table's own), so building twice gives the same bytes and
``bench leaderboard check`` can compare files byte for byte. Displayed numbers use each
column's ``decimals``; CSV and JSON carry full precision (Python's shortest round-trip
repr, identical on every IEEE-754 machine).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any

from rrg_bench.leaderboard.table import Table, TableCell, TableColumn, TableRow, format_value, half_width, json_ready

DAGGER = "†"
CI_NOTE = "± is half the width of the 95% bootstrap CI"


def _arrow(col: TableColumn) -> str:
    return "↑" if col.higher_is_better else "↓"


def _row_label(row: TableRow) -> str:
    return row.label + (" (baseline)" if row.baseline else "") + ("" if row.eligible else f" {DAGGER}")


def _rank_text(row: TableRow) -> str:
    return str(row.rank) if row.rank is not None else "–"


def _legend(table: Table) -> list[str]:
    parts = []
    if table.ranked:
        parts.append("best ranked value per column in bold")
    else:
        parts.append("best value per column in bold")
    if table.show_ci:
        parts.append(CI_NOTE)
    if table.marker_legend:
        parts.append(table.marker_legend)
    return parts


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def join_names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_UNAVAILABLE = re.compile(r"^(\d+ of \d+ requested metrics unavailable): .*$")


def reason_summary(row: TableRow, table: Table) -> str:
    """Why a row is not ranked, said once: the board columns it lacks are folded into one clause
    (named by their headers), and the record's own list of unavailable scorer specs is not repeated."""
    display = {c.id: c.display for c in table.columns}
    folded = {f"lacks metric {m}" for m in row.missing}
    parts = []
    for reason in row.reasons:
        if reason in folded:
            continue
        short = _UNAVAILABLE.match(reason) if row.missing else None
        parts.append(f"{short.group(1)} where it was scored" if short else reason)
    if row.missing:
        parts.append("lacks " + join_names([display.get(m, m) for m in row.missing]))
    return "; ".join(dict.fromkeys(parts)) or "not eligible"


def _unranked_lines(table: Table) -> list[str]:
    return [f"{r.label}: {reason_summary(r, table)}" for r in table.unranked_rows] if table.ranked else []


# ---------------------------------------------------------------- Markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_cell(cell: TableCell, col: TableColumn, show_ci: bool) -> str:
    if cell.value is None:
        return "—"
    text = format_value(cell.value, col.decimals)
    text = f"**{text}**" if cell.bold else text
    hw = half_width(cell.ci95)
    if show_ci and hw is not None:
        text += f" ± {format_value(hw, col.decimals)}"
    return text + cell.marker


def to_markdown(table: Table) -> str:
    lines = [f"# {table.title}", ""]
    if table.subtitle:
        lines += [table.subtitle, ""]
    lines += [" ".join(_sentence(s) for s in _legend(table)), ""]
    head = (["Rank"] if table.ranked else []) + ["Model"] + [f"{c.display} {_arrow(c)}" for c in table.columns]
    align = (["---:"] if table.ranked else []) + [":---"] + ["---:"] * len(table.columns)
    lines.append("| " + " | ".join(_md_escape(h) for h in head) + " |")
    lines.append("|" + "|".join(align) + "|")
    for row in table.rows:
        cells = ([_rank_text(row)] if table.ranked else []) + [_md_escape(_row_label(row))]
        cells += [_md_cell(row.cells[c.id], c, table.show_ci) for c in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    unranked = _unranked_lines(table)
    if unranked:
        lines += ["", f"{DAGGER} Shown for reference, not ranked:", ""] + [f"- {_md_escape(u)}" for u in unranked]
    lines += ["", "## Metrics", "", "| Column | Metric id | Version | Convention |", "|:---|:---|:---|:---|"]
    for c in table.columns:
        version = c.metric_version or "— (no record has it)"
        lines.append(f"| {_md_escape(c.display)} | `{c.id}` | {version} | {_md_escape(c.convention)} |")
    if table.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- LaTeX (booktabs)

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_TEX_UNICODE = {
    "†": r"$^\dagger$", "±": r"$\pm$", "×": r"$\times$", "−": "-", "–": "--", "—": "---", "≥": r"$\geq$",
    "≤": r"$\leq$", "→": r"$\rightarrow$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "’": "'", "‘": "`",
    "“": "``", "”": "''", "…": r"\ldots{}", "β": r"$\beta$", "σ": r"$\sigma$", "α": r"$\alpha$",
}


def conventions_sentence(columns: list[TableColumn]) -> str:
    """One caption sentence naming every column's convention, shared tails said once.

    Conventions are "; "-joined clauses. Consecutive columns ending in the same clause (e.g.
    the tokenisation) are grouped and that clause is stated once for the group, so a
    seven-column NLG block does not repeat its tokeniser seven times.
    """
    groups: list[list[tuple[TableColumn, list[str]]]] = []
    for c in columns:
        clauses = c.convention.split("; ")
        last = groups[-1][-1][1] if groups else None
        if groups and len(clauses) > 1 and last is not None and len(last) > 1 and last[-1] == clauses[-1]:
            groups[-1].append((c, clauses))
        else:
            groups.append([(c, clauses)])
    parts = []
    for group in groups:
        if len(group) == 1:
            c, clauses = group[0]
            parts.append(f"{c.display}: {'; '.join(clauses)}")
            continue
        own = "; ".join(f"{c.display}: {'; '.join(cl[:-1])}" for c, cl in group)
        parts.append(f"{own} ({group[0][0].display} to {group[-1][0].display}: {group[0][1][-1]})")
    return ("Conventions: " + "; ".join(parts) + ".") if parts else ""


def tex_escape(text: str) -> str:
    """Escape for pdflatex; non-ASCII without a mapping becomes '?' so the file always compiles."""
    out = []
    for ch in text:
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch in _TEX_UNICODE:
            out.append(_TEX_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def _tex_cell(cell: TableCell, col: TableColumn, show_ci: bool) -> str:
    if cell.value is None:
        return "--"
    text = format_value(cell.value, col.decimals)
    text = rf"\textbf{{{text}}}" if cell.bold else text
    hw = half_width(cell.ci95)
    if show_ci and hw is not None:
        text += rf"{{\scriptsize${{\pm}}${format_value(hw, col.decimals)}}}"
    if cell.marker:
        text += f"$^{{{cell.marker}}}$"
    return text


def to_latex(table: Table, label: str = "tab:results") -> str:
    caption = [tex_escape(table.title) + "."]
    if table.subtitle:
        caption.append(tex_escape(table.subtitle))
    caption.append(tex_escape(_sentence("; ".join(_legend(table)))))
    caption.append(tex_escape(conventions_sentence(table.columns)))
    spec = ("r" if table.ranked else "") + "l" + "r" * len(table.columns)
    head = (["Rank"] if table.ranked else []) + ["Model"]
    head += [tex_escape(f"{c.display}{_arrow(c)}") for c in table.columns]
    lines = [
        "% Generated by rrg-bench; do not edit by hand.",
        r"% Needs \usepackage{booktabs} and \usepackage{graphicx} in the preamble.",
        r"\begin{table*}[t]",
        r"\centering",
        r"\caption{" + " ".join(caption) + "}",
        r"\label{" + label + "}",
        r"\resizebox{\linewidth}{!}{%",
        r"\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
    ]
    previous_eligible = True
    for row in table.rows:
        if table.ranked and previous_eligible and not row.eligible and table.ranked_rows:
            lines.append(r"\midrule")
        previous_eligible = row.eligible
        cells = (["--" if row.rank is None else str(row.rank)] if table.ranked else [])
        cells.append(tex_escape(_row_label(row)))
        cells += [_tex_cell(row.cells[c.id], c, table.show_ci) for c in table.columns]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    unranked = _unranked_lines(table)
    if unranked:
        lines.append(r"\par\smallskip\footnotesize " + tex_escape(f"{DAGGER} Not ranked: " + " ".join(
            u if u.endswith(".") else u + "." for u in unranked)))
    lines.append(r"\end{table*}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- CSV and JSON


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = (["rank"] if table.ranked else []) + ["model", "eligible", "run_fingerprint"]
    for c in table.columns:
        head += [c.id, f"{c.id}:ci_low", f"{c.id}:ci_high"]
    has_p = any(cell.p_value is not None for r in table.rows for cell in r.cells.values())
    if has_p:
        head += [f"{c.id}:p_vs_baseline" for c in table.columns]
    head += ["baseline", "reasons"]
    writer.writerow(head)
    for row in table.rows:
        out = ([row.rank if row.rank is not None else ""] if table.ranked else [])
        out += [row.label, "true" if row.eligible else "false", row.run_fingerprint]
        for c in table.columns:
            cell = row.cells[c.id]
            out += [_num(cell.value), _num(cell.ci95[0] if cell.ci95 else None),
                    _num(cell.ci95[1] if cell.ci95 else None)]
        if has_p:
            out += [_num(row.cells[c.id].p_value) for c in table.columns]
        out += ["true" if row.baseline else "false", "; ".join(row.reasons)]
        writer.writerow(out)
    return buf.getvalue()


def table_dict(table: Table) -> dict[str, Any]:
    return json_ready({
        "title": table.title,
        "subtitle": table.subtitle,
        "sort_metric": table.sort_metric,
        "ranked": table.ranked,
        "columns": [{"id": c.id, "display": c.display, "convention": c.convention,
                     "higher_is_better": c.higher_is_better, "decimals": c.decimals,
                     "metric_version": c.metric_version, "scorer": c.scorer} for c in table.columns],
        "rows": [{"rank": r.rank, "model": r.label, "eligible": r.eligible, "baseline": r.baseline,
                  "run_fingerprint": r.run_fingerprint, "record": r.source, "reasons": r.reasons,
                  "values": {c.id: _cell_dict(r.cells[c.id]) for c in table.columns}} for r in table.rows],
        "notes": table.notes,
        "legend": _legend(table),
    })


def _cell_dict(cell: TableCell) -> dict[str, Any]:
    out: dict[str, Any] = {"value": cell.value, "ci95": list(cell.ci95) if cell.ci95 else None, "best": cell.bold}
    if cell.p_value is not None:
        out["p_vs_baseline"] = cell.p_value
        out["marker"] = cell.marker
    if cell.per_label:
        out["per_label"] = cell.per_label
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def to_json(table: Table) -> str:
    return dumps(table_dict(table))


# ---------------------------------------------------------------- HTML (self-contained, sortable)

_CSS = """
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:2rem auto;max-width:96rem;padding:0 1rem;color:#1d2430}
.scroll{overflow-x:auto}
h1{font-size:1.4rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}
p.sub{color:#55606e;margin-top:0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin-top:1rem}
th,td{padding:.3rem .5rem;text-align:right;white-space:nowrap}
#board{font-size:.92rem}
#board th{border-top:2px solid #1d2430;border-bottom:1px solid #1d2430;cursor:pointer;user-select:none;
vertical-align:bottom;white-space:normal;overflow-wrap:normal;hyphens:manual;max-width:7.5rem}
#board th.text{max-width:none}
.nw{white-space:nowrap}
td{vertical-align:top}
th.text,td.text{text-align:left}
#board td.text{white-space:normal;min-width:9rem;max-width:20rem}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tbody.ranked tr:last-child td{border-bottom:1px solid #1d2430}
tbody.unranked td{color:#6b7582;font-style:italic}
tbody.unranked tr:last-child td{border-bottom:2px solid #1d2430}
tbody.ranked tr:nth-child(even){background:#f3f5f8}
td .ci{display:block;font-size:.7rem;color:#6b7582}
td b{font-weight:700}
table.meta td{white-space:normal;text-align:left;vertical-align:top;border-bottom:1px solid #dde2e8}
table.meta td:nth-child(1),table.meta td:nth-child(3){white-space:nowrap}
table.meta td:nth-child(2){min-width:12rem}
table.meta th{text-align:left;border-bottom:1px solid #1d2430}
code{font-size:.85em}
"""

_JS = """
(function(){
  var table=document.getElementById('board');
  var heads=table.tHead.rows[0].cells;
  function key(td,num){var v=td.getAttribute('data-value');
    if(v===null||v===''){return null;} return num?parseFloat(v):v.toLowerCase();}
  function sortBy(i,dir){
    var num=heads[i].getAttribute('data-type')==='num';
    Array.prototype.forEach.call(table.tBodies,function(tb){
      var rows=Array.prototype.slice.call(tb.rows);
      rows.sort(function(a,b){var x=key(a.cells[i],num),y=key(b.cells[i],num);
        if(x===null&&y===null){return 0;} if(x===null){return 1;} if(y===null){return -1;}
        return (x<y?-1:x>y?1:0)*dir;});
      rows.forEach(function(r){tb.appendChild(r);});
    });
    Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
    heads[i].setAttribute('aria-sort',dir>0?'ascending':'descending');
  }
  Array.prototype.forEach.call(heads,function(h,i){
    h.addEventListener('click',function(){
      var cur=h.getAttribute('aria-sort');
      var num=h.getAttribute('data-type')==='num';
      var dir=cur?(cur==='ascending'?-1:1):(h.getAttribute('data-better')==='lower'?1:(num&&i>0?-1:1));
      sortBy(i,dir);});
  });
})();
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _header_html(text: str) -> str:
    """Headers wrap only between words: a word with a hyphen or slash (``BLEU-1``, ``1/RadCliQ-v1``)
    and a parenthesised group (``(ER mean)``) never break inside."""
    words = re.findall(r"\([^)]*\)|\S+", text)
    return " ".join(f'<span class="nw">{_h(w)}</span>' if re.search(r"[-/ ]", w) else _h(w) for w in words)


def _id_html(metric_id: str) -> str:
    """A metric id that may wrap only between its parameters, never inside a word."""
    return "".join(_h(ch) + ("<wbr>" if ch in "[," else "") for ch in metric_id)


def _html_cell(cell: TableCell, col: TableColumn, show_ci: bool) -> str:
    if cell.value is None:
        return '<td data-value="">—</td>'
    text = _h(format_value(cell.value, col.decimals))
    text = f"<b>{text}</b>" if cell.bold else text
    hw = half_width(cell.ci95)
    title = ""
    if cell.ci95 is not None:
        lo, hi = (format_value(v, col.decimals) for v in cell.ci95)
        title = f' title="95% CI [{lo}, {hi}]"'
        if show_ci and hw is not None:
            text += f'<span class="ci">± {format_value(hw, col.decimals)}</span>'
    if cell.marker:
        text += f"<sup>{_h(cell.marker)}</sup>"
    return f'<td data-value="{cell.value!r}"{title}>{text}</td>'


def _html_head(table: Table) -> str:
    head = ['<th data-type="num" data-better="lower" scope="col">Rank</th>'] if table.ranked else []
    head.append('<th class="text" data-type="text" scope="col">Model</th>')
    for c in table.columns:
        better = "higher" if c.higher_is_better else "lower"
        head.append(f'<th data-type="num" data-better="{better}" scope="col" title="{_h(c.id)}: {_h(c.convention)}">'
                    f"{_header_html(c.display)}&nbsp;{_arrow(c)}</th>")
    return "<thead><tr>" + "".join(head) + "</tr></thead>"


def _html_body(table: Table, rows: list[TableRow], cls: str) -> str:
    out = [f'<tbody class="{cls}">']
    for r in rows:
        cells = [f'<td data-value="{"" if r.rank is None else r.rank}">{_rank_text(r)}</td>'] if table.ranked else []
        tip = "; ".join([f"record {r.source}"] + r.reasons)
        cells.append(f'<td class="text" data-value="{_h(r.label)}" title="{_h(tip)}">{_h(_row_label(r))}</td>')
        cells += [_html_cell(r.cells[c.id], c, table.show_ci) for c in table.columns]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody>")
    return "\n".join(out)


def _html_metrics(table: Table) -> list[str]:
    parts = ["<h2>Metrics</h2>", '<table class="meta"><thead><tr><th>Column</th><th>Metric id</th><th>Version</th>'
             "<th>Convention</th></tr></thead><tbody>"]
    for c in table.columns:
        version = _h(c.metric_version) if c.metric_version else "— (no record has it)"
        parts.append(f"<tr><td>{_h(c.display)}</td><td><code>{_id_html(c.id)}</code></td>"
                     f"<td>{version}</td><td>{_h(c.convention)}</td></tr>")
    parts.append("</tbody></table>")
    return parts


def to_html(table: Table) -> str:
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(table.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{_h(table.title)}</h1>",
    ]
    if table.subtitle:
        parts.append(f'<p class="sub">{_h(table.subtitle)}</p>')
    parts.append(f"<p>{_h(' '.join(_sentence(s) for s in _legend(table)))} Click a column header to sort; "
                 "hover over it for the metric id (ids, versions and conventions are listed under Metrics).</p>")
    parts += ['<div class="scroll"><table id="board">', _html_head(table)]
    if table.ranked:
        parts.append(_html_body(table, table.ranked_rows, "ranked"))
        if table.unranked_rows:
            parts.append(_html_body(table, table.unranked_rows, "unranked"))
    else:
        parts.append(_html_body(table, table.rows, "ranked"))
    parts.append("</table></div>")
    unranked = _unranked_lines(table)
    if unranked:
        parts.append(f"<h2>{DAGGER} Shown for reference, not ranked</h2>")
        parts.append("<ul>" + "".join(f"<li>{_h(u)}</li>" for u in unranked) + "</ul>")
    parts += _html_metrics(table)
    if table.notes:
        parts.append("<h2>Notes</h2>")
        parts.append("<ul>" + "".join(f"<li>{_h(n)}</li>" for n in table.notes) + "</ul>")
    parts += [f"<script>{_JS}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


RENDERERS = {"md": to_markdown, "tex": to_latex, "csv": to_csv, "json": to_json, "html": to_html}
