"""Putting a results record on a board: ``bench leaderboard add``.

The record file is copied byte for byte (its sha256 in the board's provenance then equals
the run's own ``results.json``). Its per-study statistics are copied into a companion
directory ``<generator>-<fp12>/`` beside it, under the same relative paths the record's
``scores`` block names, so ``bench table`` and ``bench compare`` can run paired tests on
committed records without the (uncommitted) run directory. Because records may be
committed but report text must never be, a statistics file is only copied when every
column is numeric — study ids in the index and numbers, nothing else.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rrg_bench.compare import LoadedRecord, load, locate_stats
from rrg_bench.errors import BenchError, UsageError
from rrg_bench.leaderboard.boards import BoardLayout, BoardSpec

#: a committed statistics file larger than this is refused (they are a few tens of kB)
MAX_STATS_BYTES = 2_000_000


def record_stem(lr: LoadedRecord) -> str:
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(lr.record.generator.get("name", "external"))).strip("_")
    return f"{name}-{lr.record.run_fingerprint[:12]}"


def check_numeric_stats(path: Path) -> None:
    """Refuse a stats file that could carry text: every column must be numeric or boolean."""
    import pandas as pd

    if path.stat().st_size > MAX_STATS_BYTES:
        raise BenchError(f"{path}: {path.stat().st_size} bytes is too large to commit (limit {MAX_STATS_BYTES}); "
                         "add the record with --no-stats")
    frame = pd.read_parquet(path)
    bad = [str(c) for c in frame.columns
           if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if bad:
        raise BenchError(f"{path}: columns {bad[:5]} are not numeric (they could hold report text), so the file is "
                         "not copied into the repository; add the record with --no-stats")
    if frame.index.name != "study_id":
        raise BenchError(f"{path}: expected per-study rows indexed by 'study_id', got index {frame.index.name!r}")


def matching_boards(layout: BoardLayout, lr: LoadedRecord) -> list[BoardSpec]:
    ds = lr.record.dataset
    specs = [layout.load(b) for b in layout.board_names()]
    return [s for s in specs if s.dataset.name == ds.get("name") and s.dataset.split == ds.get("split")]


@dataclass
class AddResult:
    board: str
    record: Path
    state: str  # "added" | "unchanged" | "replaced"
    stats: list[Path] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why it will not be ranked, if so


def add_record(layout: BoardLayout, source: Path, board: str | None = None, *, with_stats: bool = True,
               replace: bool = False) -> AddResult:
    from rrg_bench.leaderboard.build import eligibility_reasons

    lr = load(source)
    if board is None:
        candidates = matching_boards(layout, lr)
        if len(candidates) != 1:
            ds = lr.record.dataset
            which = ", ".join(s.board for s in candidates) or "none"
            raise UsageError(f"{lr.path}: {len(candidates)} boards are for {ds.get('name')}/{ds.get('split')} "
                             f"(matching: {which}; all: {', '.join(layout.board_names()) or 'none'}); "
                             "choose one with --board")
        spec = candidates[0]
    else:
        spec = layout.load(board)
    ds = lr.record.dataset
    if (ds.get("name"), ds.get("split")) != (spec.dataset.name, spec.dataset.split):
        raise UsageError(f"{lr.path}: scored on {ds.get('name')}/{ds.get('split')}, board {spec.board!r} is "
                         f"{spec.dataset.name}/{spec.dataset.split}")
    pinned = spec.dataset.references_sha256
    if pinned is not None and ds.get("references_sha256") != pinned:
        raise BenchError(f"{lr.path}: references_sha256 {str(ds.get('references_sha256'))[:12]}… differs from board "
                         f"{spec.board!r}'s {pinned[:12]}… (another data version); it can never be ranked there")

    stem = record_stem(lr)
    folder = layout.records_dir(spec.board)
    target = folder / f"{stem}.json"
    new_bytes = lr.path.read_bytes()
    state = "added"
    if target.exists():
        if target.read_bytes() == new_bytes:
            state = "unchanged"
        elif not replace:
            raise BenchError(f"{target} already holds another record of run {lr.record.run_fingerprint[:12]} "
                             "(a re-run); pass --replace to put this one there instead")
        else:
            state = "replaced"

    copies: list[tuple[Path, Path]] = []
    if with_stats:
        for scorer_spec, entry in sorted(lr.record.scores.items()):
            src = locate_stats(lr, scorer_spec)
            check_numeric_stats(src)
            copies.append((src, folder / stem / entry["path"]))
    companion = folder / stem
    if state == "replaced" and companion.exists():
        shutil.rmtree(companion)
    folder.mkdir(parents=True, exist_ok=True)
    for src, dst in copies:
        if dst.resolve() != src.resolve():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    if state != "unchanged":
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(new_bytes)
        tmp.replace(target)  # the record last: its presence means its statistics are there
    return AddResult(spec.board, target, state, [dst for _, dst in copies], eligibility_reasons(spec, load(target)))
