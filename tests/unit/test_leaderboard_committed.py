"""The committed iu_xray_r2gen_test board: reproducible, text-free, and closed to other conventions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import REPO
from helpers.leaderboard_records import copy_leaderboard
from rrg_bench.leaderboard.boards import BoardLayout, discover_root
from rrg_bench.leaderboard.build import build, check

BOARD = "iu_xray_r2gen_test"


@pytest.fixture(scope="module")
def committed() -> BoardLayout:
    layout = BoardLayout(discover_root(REPO))
    if not layout.record_files(BOARD):
        pytest.skip("no committed records for the board")
    return layout


def test_committed_board_rebuilds_byte_for_byte(committed: BoardLayout):
    assert check(committed, [BOARD]) == {BOARD: []}


def test_committed_board_shows_oracle_unranked_and_no_knn_image(committed: BoardLayout):
    spec = committed.load(BOARD)
    data = json.loads((committed.tables_dir(BOARD, spec.version) / "table.json").read_text())
    rows = {r["model"]: r for r in data["rows"]}
    assert {"constant_normal", "random_report", "oracle"} <= set(rows)
    assert rows["oracle"]["rank"] is None and not rows["oracle"]["eligible"]
    assert sorted(r["rank"] for r in data["rows"] if r["eligible"]) == list(range(1, len(rows)))
    assert "knn_image" not in rows  # no real images here: see the board notes and CHANGELOG
    assert any("knn_image" in n for n in data["notes"])


def test_committed_statistics_hold_only_numbers(committed: BoardLayout):
    import pandas as pd

    files = sorted(committed.records_dir(BOARD).rglob("*.parquet"))
    assert files, "records are committed with their per-study statistics"
    for path in files:
        assert path.stat().st_size < 200_000, path
        frame = pd.read_parquet(path)
        assert frame.index.name == "study_id"
        assert all(pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns), path


def test_a_tok_r2gen_record_is_not_merged_into_the_ptb_columns(committed: BoardLayout, tmp_path: Path):
    """A record scored under R2Gen's tokenisation (ids and conventions from the real scorer)
    lands on the board unranked, with its BLEU shown in no PTB column."""
    from rrg_bench.metrics.nlg import NLGScorer

    layout = BoardLayout(copy_leaderboard(committed.root, tmp_path / "lb"))
    shutil.rmtree(layout.root / "tables")
    source = next(p for p in layout.record_files(BOARD) if p.name.startswith("constant_normal-"))
    data = json.loads(source.read_text())
    r2gen = NLGScorer(tok="r2gen")
    metrics = {}
    for col in r2gen.columns():
        ptb_entry = data["metrics"][col.id.replace("[tok=r2gen]", "[tok=ptb]")]
        metrics[col.id] = {**ptb_entry, "convention": col.convention, "scorer": r2gen.spec,
                           "impl": {**ptb_entry["impl"], "normaliser": r2gen.normaliser.id}}
    # its statistics: the PTB record's (a board recomputes every value from them, so they must be there)
    ptb_entry = data["scores"]["nlg[tok=ptb]"]
    stem = "constant_normal_r2gen-ffffffffffff"
    target = layout.records_dir(BOARD) / stem / ptb_entry["path"]
    target.parent.mkdir(parents=True)
    shutil.copyfile(source.with_suffix("") / ptb_entry["path"], target)
    data.update(metrics=metrics, scores={r2gen.spec: ptb_entry}, run_fingerprint="f" * 64, record_id="r2gen-variant")
    (layout.records_dir(BOARD) / f"{stem}.json").write_text(json.dumps(data))

    table = json.loads((build(layout, BOARD).directory / "table.json").read_text())
    row = next(r for r in table["rows"] if r["run_fingerprint"] == "f" * 64)
    assert not row["eligible"] and row["rank"] is None
    assert any("bleu4[tok=r2gen]" in reason and "never merged" in reason for reason in row["reasons"])
    assert all(v["value"] is None for v in row["values"].values())
    assert [c["id"] for c in table["columns"]] == committed.load(BOARD).columns
