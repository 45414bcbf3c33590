"""Boards: eligibility, one implementation per column, immutable versions, byte-identical rebuilds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers.leaderboard_records import REFS, make_board_root, make_record
from rrg_bench.errors import BenchError, RegressionFound, UsageError
from rrg_bench.leaderboard.boards import BoardLayout, parse_board
from rrg_bench.leaderboard.build import TABLE_FILES, board_table, build, check, raise_on_check
from rrg_bench.leaderboard.store import add_record
from rrg_bench.records import load_any as load

HITS_GOOD = [1] * 30 + [0] * 10
HITS_MID = [1] * 22 + [0] * 18


@pytest.fixture()
def board(tmp_path: Path) -> BoardLayout:
    """A toy board with a ranked pair, an oracle-like sanity record and a --limit record."""
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    runs = tmp_path / "runs"
    add_record(layout, make_record(runs / "a", "model_a", HITS_GOOD))
    add_record(layout, make_record(runs / "b", "model_b", HITS_MID))
    add_record(layout, make_record(runs / "o", "oracle", [1] * 40, eligible=False,
                                   reasons=["generator 'oracle' is a sanity check, never eligible"]))
    add_record(layout, make_record(runs / "l", "model_l", [1] * 40, limit=5))
    return layout


def _table_json(layout: BoardLayout, version: int = 1) -> dict:
    return json.loads((layout.tables_dir("toy_board", version) / "table.json").read_text())


def test_build_writes_every_file_and_is_byte_identical(board: BoardLayout, tmp_path: Path):
    result = build(board, "toy_board")
    out = result.directory
    assert result.state == "written"
    for name in (*TABLE_FILES, "provenance.json", "bar_acc-conv=a.png", "bar_acc-conv=a.svg",
                 "bar_len-conv=a.png", "bar_len-conv=a.svg"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert build(board, "toy_board").state == "unchanged"
    # an independent build elsewhere (other temp path, fresh process state) gives the same bytes
    other = BoardLayout(tmp_path / "copy")
    shutil.copytree(board.root, other.root, ignore=shutil.ignore_patterns("tables"))
    build(other, "toy_board")
    second = {p.name: p.read_bytes() for p in other.tables_dir("toy_board", 1).iterdir()}
    assert first == second
    assert check(board) == {"toy_board": []}
    # no clock and no matplotlib version string leak into the plots
    assert b"Software" not in first["bar_acc-conv=a.png"] and b"<dc:date>" not in first["bar_acc-conv=a.svg"]


def test_ranking_and_ineligible_rows(board: BoardLayout):
    build(board, "toy_board")
    data = _table_json(board)
    rows = {r["model"]: r for r in data["rows"]}
    assert [r["model"] for r in data["rows"]] == ["model_a", "model_b", "model_l", "oracle"]
    assert rows["model_a"]["rank"] == 1 and rows["model_b"]["rank"] == 2
    assert rows["oracle"]["rank"] is None and not rows["oracle"]["eligible"]
    assert any("sanity check" in r for r in rows["oracle"]["reasons"])
    assert any("--limit 5" in r for r in rows["model_l"]["reasons"])
    # best is among ranked rows only: the oracle's perfect accuracy is not bold
    assert rows["model_a"]["values"]["acc[conv=a]"]["best"] is True
    assert rows["oracle"]["values"]["acc[conv=a]"]["best"] is False
    md = (board.tables_dir("toy_board", 1) / "table.md").read_text()
    assert "| – | oracle † |" in md and "Shown for reference, not ranked" in md
    assert "**0.750**" in md  # model_a accuracy, 3 decimals from the metric entry


def test_lower_is_better_column_bolds_the_minimum(tmp_path: Path):
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    add_record(layout, make_record(tmp_path / "a", "short", HITS_MID, lengths=[5.0] * 40))
    add_record(layout, make_record(tmp_path / "b", "long", HITS_GOOD, lengths=[9.0] * 40))
    build(layout, "toy_board")
    rows = {r["model"]: r for r in _table_json(layout)["rows"]}
    assert rows["short"]["values"]["len[conv=a]"]["best"] and not rows["long"]["values"]["len[conv=a]"]["best"]


def test_other_convention_is_never_merged_into_the_column(board: BoardLayout, tmp_path: Path):
    add_record(board, make_record(tmp_path / "runs" / "c", "model_c", [1] * 39 + [0], conv="b"))
    build(board, "toy_board")
    rows = {r["model"]: r for r in _table_json(board)["rows"]}
    c = rows["model_c"]
    assert not c["eligible"] and c["rank"] is None
    assert c["values"]["acc[conv=a]"]["value"] is None
    assert any("acc[conv=b]" in r and "another convention" in r for r in c["reasons"])
    assert [col["id"] for col in _table_json(board)["columns"]] == ["acc[conv=a]", "len[conv=a]"]


def test_mixed_implementations_in_a_ranked_column_are_refused(board: BoardLayout, tmp_path: Path):
    add_record(board, make_record(tmp_path / "runs" / "v2", "model_v2", HITS_MID, metric_version="2"))
    with pytest.raises(BenchError, match=r"acc\[conv=a\].*mix.*metric_version '1' vs '2'"):
        build(board, "toy_board")


def test_pinned_metric_version_makes_other_versions_unranked(tmp_path: Path):
    layout = BoardLayout(make_board_root(tmp_path / "lb", versions='{"acc[conv=a]": "1", "len[conv=a]": "1"}'))
    add_record(layout, make_record(tmp_path / "a", "model_a", HITS_GOOD))
    add_record(layout, make_record(tmp_path / "v2", "model_v2", HITS_MID, metric_version="2"))
    build(layout, "toy_board")
    rows = {r["model"]: r for r in _table_json(layout)["rows"]}
    assert rows["model_a"]["rank"] == 1 and not rows["model_v2"]["eligible"]
    # the unranked row's value made by another version is not shown in the column either
    assert rows["model_v2"]["values"]["acc[conv=a]"]["value"] is None
    assert any("requires '1'" in r for r in rows["model_v2"]["reasons"])


def test_impl_differences_error_unless_tolerated(tmp_path: Path):
    strict = BoardLayout(make_board_root(tmp_path / "strict"))
    lenient = BoardLayout(make_board_root(tmp_path / "lenient", ignore="[java]"))
    a = make_record(tmp_path / "a", "model_a", HITS_GOOD, impl={"toy": "1.0", "java": "17.0.1"})
    b = make_record(tmp_path / "b", "model_b", HITS_MID, impl={"toy": "1.0", "java": "21.0.2"})
    for layout in (strict, lenient):
        add_record(layout, a)
        add_record(layout, b)
    with pytest.raises(BenchError, match=r"impl\.java '17\.0\.1' vs '21\.0\.2'"):
        build(strict, "toy_board")
    assert build(lenient, "toy_board").state == "written"


def test_published_version_is_immutable(board: BoardLayout, tmp_path: Path):
    build(board, "toy_board")
    v1 = {p.name: p.read_bytes() for p in board.tables_dir("toy_board", 1).iterdir()}
    add_record(board, make_record(tmp_path / "runs" / "d", "model_d", HITS_MID[:-1] + [1]))
    with pytest.raises(BenchError, match=r"immutable.*version: 2"):
        build(board, "toy_board")
    assert check(board)["toy_board"]  # the committed v1 no longer follows from the records
    spec = board.board_file("toy_board")
    spec.write_text(spec.read_text().replace("version: 1", "version: 2"))
    with pytest.raises(BenchError, match="CHANGELOG.md has no line for 'toy_board v2'"):
        build(board, "toy_board")
    with board.changelog.open("a") as fh:
        fh.write("- toy_board v2: adds model_d\n")
    assert build(board, "toy_board").state == "written"
    assert {p.name: p.read_bytes() for p in board.tables_dir("toy_board", 1).iterdir()} == v1
    assert check(board) == {"toy_board": []}


def test_check_reports_a_tampered_file_with_exit_code_3(board: BoardLayout):
    build(board, "toy_board")
    md = board.tables_dir("toy_board", 1) / "table.md"
    md.write_text(md.read_text().replace("model_a", "model_x"))
    (board.tables_dir("toy_board", 1) / "stray.txt").write_text("x")
    result = check(board)
    assert any("table.md: content differs" in p for p in result["toy_board"])
    assert any("stray.txt: not produced" in p for p in result["toy_board"])
    with pytest.raises(RegressionFound) as info:
        raise_on_check(result)
    assert info.value.exit_code == 3


def test_record_of_another_dataset_in_the_board_folder_is_an_error(board: BoardLayout, tmp_path: Path):
    other = make_record(tmp_path / "x", "model_x", HITS_MID, dataset={"name": "other/v1", "split": "test",
                                                                      "references_sha256": REFS})
    shutil.copyfile(other, board.records_dir("toy_board") / "model_x-000000000000.json")
    with pytest.raises(BenchError, match="other/v1/test.*toy/v1/test"):
        build(board, "toy_board")


def test_add_copies_record_bytes_and_numeric_stats_only(tmp_path: Path):
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    src = make_record(tmp_path / "a", "model_a", HITS_GOOD)
    result = add_record(layout, src.parent)  # a run directory works too
    assert result.record.read_bytes() == src.read_bytes() and result.state == "added"
    assert [p.relative_to(layout.records_dir("toy_board")).as_posix() for p in result.stats] == [
        f"{result.record.stem}/scores/toy_conv=a.parquet"]
    assert add_record(layout, src).state == "unchanged"
    texty = make_record(tmp_path / "t", "model_t", HITS_MID, extra_text_column=True)
    with pytest.raises(BenchError, match=r"\['report'\] are not numeric"):
        add_record(layout, texty)
    assert not list(layout.records_dir("toy_board").glob("model_t*"))
    wrong = make_record(tmp_path / "w", "model_w", HITS_MID, references_sha256="b" * 64)
    with pytest.raises(BenchError, match="references_sha256"):
        add_record(layout, wrong)
    with pytest.raises(UsageError, match="unknown board"):
        add_record(layout, src, board="nope")


def test_rerun_with_same_fingerprint_needs_replace(tmp_path: Path):
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    src = make_record(tmp_path / "a", "model_a", HITS_GOOD)
    add_record(layout, src)
    data = json.loads(src.read_text())
    data["record_id"] = "00000000-0000-0000-0000-000000000000"
    src.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="--replace"):
        add_record(layout, src)
    assert add_record(layout, src, replace=True).state == "replaced"


def test_replace_swaps_the_record_a_board_shows_and_deletes_none(tmp_path: Path):
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    first = make_record(tmp_path / "a", "model_a", HITS_MID)
    better = make_record(tmp_path / "b", "model_a", HITS_GOOD)  # the same system, re-run
    add_record(layout, first)
    with pytest.raises(BenchError, match="already shows system 'model_a'"):
        add_record(layout, better)
    result = add_record(layout, better, replace=True)
    assert result.state == "replaced"
    active = layout.record_files("toy_board")
    assert [p.name for p in active] == [result.record.name]
    retired = sorted((layout.records_dir("toy_board") / "retired").glob("*.json"))
    assert len(retired) == 1 and retired[0].read_bytes() == first.read_bytes()
    assert (retired[0].with_suffix("") / "scores").is_dir()  # its statistics went with it
    rows = board_table(layout.load("toy_board"), [load(p) for p in active]).rows
    assert [r.label for r in rows] == ["model_a"]


def test_board_spec_validation(tmp_path: Path):
    root = make_board_root(tmp_path / "lb")
    path = root / "boards" / "toy_board.yaml"
    path.write_text(path.read_text().replace("metric: acc[conv=a]", "metric: bleu4[tok=ptb]"))
    with pytest.raises(BenchError, match=r"toy_board.yaml: invalid board spec.*sort.metric"):
        parse_board(path)
    renamed = root / "boards" / "other.yaml"
    make_board_root(tmp_path / "lb2")
    shutil.copyfile(tmp_path / "lb2" / "boards" / "toy_board.yaml", renamed)
    with pytest.raises(BenchError, match="must equal the file name"):
        parse_board(renamed)


def test_per_label_heatmap_when_records_carry_labels(tmp_path: Path):
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    labels = {name: {"precision": p, "recall": p, "f1": p, "support": 3.0}
              for name, p in (("Cardiomegaly", 0.5), ("Edema", 0.25), ("No Finding", 0.75))}
    add_record(layout, make_record(tmp_path / "a", "model_a", HITS_GOOD, per_label=labels))
    add_record(layout, make_record(tmp_path / "b", "model_b", HITS_MID, per_label=labels))
    out = build(layout, "toy_board").directory
    assert (out / "per_label_acc-conv=a.png").is_file() and (out / "per_label_acc-conv=a.svg").is_file()
    svg = (out / "per_label_acc-conv=a.svg").read_text()
    assert "<path" in svg and "Date" not in svg


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_sortable(board: BoardLayout):
    build(board, "toy_board")
    page = (board.tables_dir("toy_board", 1) / "table.html").read_text()
    parser = _Cells()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert tags.count("script") == 1 and tags.count("style") == 1
    assert not [a for t, a in parser.tags if a.get("src") or (a.get("href") or "").startswith("http")]
    assert "http://" not in page and "https://" not in page
    assert [a["class"] for t, a in parser.tags if t == "tbody" and "class" in a] == ["ranked", "unranked"]
    assert page.count('data-type="num"') == 3  # rank + two metric columns


def test_latex_table_compiles(board: BoardLayout, tmp_path: Path):
    build(board, "toy_board")
    tex = (board.tables_dir("toy_board", 1) / "table.tex").read_text()
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1 and r"\textbf{0.750}" in tex
    assert r"oracle $^\dagger$" in tex and "Conventions" in tex
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed; structure checked only")
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
                   "\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
                   f"{tex}\n\\end{{document}}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def _edit_record(path: Path, **changes) -> Path:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if callable(value):
            value(data)
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return path


def test_board_names_systems_readably_and_marks_unofficial_ones(tmp_path: Path):
    """Display names instead of registry names, no hashes unless two rows share a name, "unofficial"
    in every table row and plot label, the lacking columns in one short clause, searchable SVG text."""
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    add_record(layout, make_record(tmp_path / "a", "model_a", HITS_GOOD))
    s2d = _edit_record(make_record(tmp_path / "s", "s2d_align", HITS_MID), generator={
        "name": "s2d_align", "display_name": "S2D-Align (unofficial, from abstract)", "unofficial": True})
    add_record(layout, s2d)
    lana = _edit_record(make_record(tmp_path / "l", "anat_attn", [1] * 25 + [0] * 15),
                        generator={"name": "anat_attn", "unofficial": True},
                        metrics=lambda d: d["metrics"].pop("len[conv=a]"))
    add_record(layout, lana)
    out = build(layout, "toy_board").directory
    rows = {r["model"]: r for r in _table_json(layout)["rows"]}
    assert list(rows) == ["model_a", "S2D-Align (unofficial, from abstract)", "anat_attn (unofficial)"]
    assert not rows["anat_attn (unofficial)"]["eligible"]
    md = (out / "table.md").read_text()
    assert "| 2 | S2D-Align (unofficial, from abstract) |" in md and "| – | anat_attn (unofficial) † |" in md
    assert "- anat_attn (unofficial): lacks Len" in md  # one clause, no fingerprint
    assert not re.search(r"\([0-9a-f]{12}\)", md)
    page = (out / "table.html").read_text()
    assert 'title="acc[conv=a]: toy accuracy under convention a"' in page and 'class="id"' not in page
    svg = (out / "bar_acc-conv=a.svg").read_text()
    assert "<text" in svg and "S2D-Align (unofficial" in svg and "Hatched: unofficial" in svg
    assert "model_a" in svg and "0.750  [" in svg  # the value column, beside the plot


def test_heatmap_greys_labels_no_reference_is_positive_for(tmp_path: Path):
    layout = BoardLayout(make_board_root(tmp_path / "lb"))
    labels = {"Cardiomegaly": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3.0},
              "Pneumonia": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0.0}}
    add_record(layout, make_record(tmp_path / "a", "model_a", HITS_GOOD, per_label=labels))
    svg = (build(layout, "toy_board").directory / "per_label_acc-conv=a.svg").read_text()
    assert "Cardiomegaly (3)" in svg and "Pneumonia (0)" in svg and "0.50" in svg
    assert "no positive reference" in svg and ">0.00<" not in svg
