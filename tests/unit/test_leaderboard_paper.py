"""Ad-hoc paper tables: rows = runs, significance markers against a baseline, conventions kept apart."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from helpers import REPO
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


def test_columns_come_in_the_papers_order_and_shared_names_say_their_convention():
    from rrg_bench.leaderboard.columns import conventional_order, disambiguate
    from rrg_bench.leaderboard.table import TableColumn

    ids = ["bleu1[tok=ptb]", "cider_d[tok=ptb]", "bleu4[tok=ptb]", "meteor[tok=ptb]", "rouge_l[tok=ptb]",
           "bleu2[tok=ptb]", "bleu3[tok=ptb]", "bleu1[conv=r2gen]", "bleu4[conv=r2gen]"]
    # one block per convention, in the order first seen
    assert conventional_order(ids, []) == ["bleu1[tok=ptb]", "bleu2[tok=ptb]", "bleu3[tok=ptb]", "bleu4[tok=ptb]",
                                           "meteor[tok=ptb]", "rouge_l[tok=ptb]", "cider_d[tok=ptb]",
                                           "bleu1[conv=r2gen]", "bleu4[conv=r2gen]"]
    committed = sorted((REPO / "leaderboard" / "records" / "iu_xray_r2gen_test").glob("constant_normal-*.json"))
    if committed:  # a real record: its ids are stored alphabetically
        record = load(committed[0])
        stored = list(record.record.metrics)
        assert stored.index("cider_d[tok=ptb]") < stored.index("meteor[tok=ptb]")  # the alphabet, not the papers
        ordered = conventional_order(list(record.record.metrics), [record])
        rules = [f"chexpert_rules_f1[labels={n},avg={avg},uncertain=positive]"
                 for n in (14, 5) for avg in ("micro", "macro", "weighted")]
        # NLG in the papers' order, then the rule labeler's columns in its own declared order
        assert ordered == [
            "bleu1[tok=ptb]", "bleu2[tok=ptb]", "bleu3[tok=ptb]", "bleu4[tok=ptb]", "meteor[tok=ptb]",
            "rouge_l[tok=ptb]", "cider_d[tok=ptb]"] + rules

    def col(mid: str, display: str) -> TableColumn:
        return TableColumn(mid, display, "", True, 4, "1", "nlg")

    named = disambiguate([col("bleu1[tok=ptb]", "BLEU-1"), col("bleu1[conv=r2gen]", "BLEU-1"),
                          col("meteor[tok=ptb]", "METEOR")])
    assert [c.display for c in named] == ["BLEU-1 (tok=ptb)", "BLEU-1 (conv=r2gen)", "METEOR"]


def test_rows_show_display_names_mark_unofficial_systems_and_add_hashes_only_on_collision(tmp_path: Path):
    import json

    from rrg_bench.leaderboard.table import row_labels

    def named(folder: str, generator: dict) -> Path:
        path = make_record(tmp_path / folder, "x", BASE)
        data = json.loads(path.read_text())
        data["generator"] = generator
        path.write_text(json.dumps(data))
        return path

    s2d = named("s2d", {"name": "s2d_align", "display_name": "S2D-Align (unofficial, from abstract)",
                        "unofficial": True})
    lana = named("lana", {"name": "anat_attn", "unofficial": True})
    one = named("one", {"name": "constant_normal"})
    two = make_record(tmp_path / "two", "constant_normal", BASE[::-1])
    labels = row_labels([load(p) for p in (s2d, lana, one, two)])
    assert labels[0] == "S2D-Align (unofficial, from abstract)"  # already says so: not repeated
    assert labels[1] == "anat_attn (unofficial)"
    assert labels[2].startswith("constant_normal (") and labels[3].startswith("constant_normal (")
    assert labels[2] != labels[3]
    table = _table([s2d, lana], n_boot=0, decimals=1)
    assert table.rows[1].unofficial and "| anat_attn (unofficial) |" in to_markdown(table)
    assert all(c.decimals == 1 for c in table.columns) and "0.8** ± 0.1 |" in to_markdown(table)
