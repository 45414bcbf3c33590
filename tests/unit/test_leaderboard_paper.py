"""Ad-hoc paper tables: rows = runs, significance markers against a baseline, conventions kept apart."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from helpers.leaderboard_records import make_record, toy_factory
from rrg_bench.compare import load
from rrg_bench.errors import BenchError, UsageError
from rrg_bench.leaderboard.paper import paper_table
from rrg_bench.leaderboard.render import to_csv, to_latex, to_markdown

BASE = [1] * 60 + [0] * 20


def _table(records, **kw):
    kw.setdefault("n_boot", 300)
    return paper_table([load(r) for r in records], scorer_factory=toy_factory, **kw)


def test_significance_markers_against_the_baseline(tmp_path: Path):
    base = make_record(tmp_path / "base", "baseline_model", BASE)
    same = make_record(tmp_path / "same", "same_model", BASE[1:] + BASE[:1])  # same accuracy, other studies
    worse = make_record(tmp_path / "worse", "worse_model", [0] * 40 + BASE[40:])
    table = _table([same, worse], baseline=load(base))
    rows = {r.label: r for r in table.rows}
    assert [r.label for r in table.rows] == ["baseline_model", "same_model", "worse_model"]
    assert rows["baseline_model"].baseline and rows["baseline_model"].cells["acc[conv=a]"].marker == ""
    assert rows["worse_model"].cells["acc[conv=a]"].marker == "*"
    assert rows["worse_model"].cells["acc[conv=a]"].p_value < 0.05
    assert rows["same_model"].cells["acc[conv=a]"].marker == ""
    md = to_markdown(table)
    assert "baseline_model (baseline)" in md and "* differs from the baseline baseline_model" in md
    assert "| Rank |" not in md  # ad-hoc tables are not rankings
    rows_csv = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert float(rows_csv[2]["acc[conv=a]:p_vs_baseline"]) < 0.05 and rows_csv[0]["baseline"] == "true"
    tex = to_latex(table)
    assert "$^{*}$" in tex and r"\textbf{0.750}" in tex


def test_without_baseline_no_markers_and_best_in_bold(tmp_path: Path):
    a = make_record(tmp_path / "a", "a", BASE)
    b = make_record(tmp_path / "b", "b", [0] * 40 + BASE[40:])
    table = _table([a, b])
    assert all(not c.marker for r in table.rows for c in r.cells.values())
    assert table.rows[0].cells["acc[conv=a]"].bold and not table.rows[1].cells["acc[conv=a]"].bold


def test_other_conventions_get_their_own_columns(tmp_path: Path):
    a = make_record(tmp_path / "a", "a", BASE, conv="a")
    b = make_record(tmp_path / "b", "b", BASE, conv="b")
    table = _table([a, b])
    assert [c.id for c in table.columns] == ["acc[conv=a]", "len[conv=a]", "acc[conv=b]", "len[conv=b]"]
    assert table.rows[1].cells["acc[conv=a]"].value is None and table.rows[0].cells["acc[conv=b]"].value is None


def test_same_id_computed_differently_is_refused(tmp_path: Path):
    a = make_record(tmp_path / "a", "a", BASE)
    v2 = make_record(tmp_path / "v2", "v2", BASE, metric_version="2")
    with pytest.raises(BenchError, match=r"would mix implementations.*metric_version"):
        _table([a, v2])


def test_refuses_other_references_and_unknown_metrics(tmp_path: Path):
    a = make_record(tmp_path / "a", "a", BASE)
    other = make_record(tmp_path / "o", "o", BASE, references_sha256="c" * 64)
    with pytest.raises(BenchError, match="other references"):
        _table([a, other])
    with pytest.raises(UsageError, match="no record has metric"):
        _table([a], metric_ids=["bleu4[tok=ptb]"])
    assert [c.id for c in _table([a], metric_ids=["len[conv=a]"]).columns] == ["len[conv=a]"]
