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

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rrg_bench.errors import BenchError, UsageError
from rrg_bench.leaderboard.boards import BoardLayout, BoardSpec
from rrg_bench.records import LoadedRecord, locate_stats
from rrg_bench.records import load_any as load
from rrg_bench.records.recompute import recompute_problems

#: a committed statistics file larger than this is refused (they are a few tens of kB)
MAX_STATS_BYTES = 2_000_000


def record_stem(lr: LoadedRecord) -> str:
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(lr.record.generator.get("name", "external"))).strip("_")
    return f"{name}-{lr.record.run_fingerprint[:12]}"


def _system(record_file: Path) -> str:
    """The system a committed record shows (its generator's display name)."""
    return _system_of(load(record_file))


def _system_of(lr: LoadedRecord) -> str:
    return str(lr.record.generator.get("name", "external"))


def retire(record_file: Path) -> Path:
    """Move a record (and its statistics) to ``retired/``: off the current board, still in the repository,
    where older published versions' provenance can find it."""
    retired = record_file.parent / "retired"
    retired.mkdir(exist_ok=True)
    stem, n = record_file.stem, 1
    while (retired / f"{stem}.json").exists() or (retired / stem).exists():
        stem, n = f"{record_file.stem}.{n}", n + 1
    companion = record_file.with_suffix("")
    if companion.is_dir():
        os.replace(companion, retired / stem)
    os.replace(record_file, retired / f"{stem}.json")
    return retired / f"{stem}.json"


def check_numeric_stats(path: Path) -> None:
    """Refuse a stats file that could carry text: every column must be numeric or boolean."""
    import pandas as pd

    if path.stat().st_size > MAX_STATS_BYTES:
        raise BenchError(f"{path}: {path.stat().st_size} bytes is too large to commit (limit {MAX_STATS_BYTES}); "
                         "a board record needs its statistics (every value is recomputed from them)")
    frame = pd.read_parquet(path)
    bad = [str(c) for c in frame.columns
           if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if bad:
        raise BenchError(f"{path}: columns {bad[:5]} are not numeric (they could hold report text), so the file is "
                         "not copied into the repository, and a board record needs its statistics; "
                         "store numeric statistics")
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
    note: str = ""  # which record of a run directory was read


def add_record(layout: BoardLayout, source: Path, board: str | None = None, *, replace: bool = False) -> AddResult:
    from rrg_bench.leaderboard.build import eligibility_reasons

    lr = load(source)
    problems = recompute_problems(lr)
    if problems:
        raise BenchError("; ".join(problems) + ". Only records whose values follow from their statistics are added")
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
    if target.exists() and target.read_bytes() == new_bytes:
        return AddResult(spec.board, target, "unchanged", [], eligibility_reasons(spec, load(target)), note=lr.note)
    same_system = [p for p in layout.record_files(spec.board) if _system(p) == _system_of(lr)]
    if same_system and not replace:
        raise BenchError(f"board {spec.board!r} already shows system {_system_of(lr)!r} with "
                         f"{', '.join(p.name for p in same_system)}; pass --replace to retire that record "
                         "(it is kept under records/<board>/retired/) and show this one instead")
    copies: list[tuple[Path, Path]] = []
    for scorer_spec, entry in sorted(lr.record.scores.items()):
        src = locate_stats(lr, scorer_spec)
        check_numeric_stats(src)
        copies.append((src, folder / ".incoming" / stem / entry["path"]))
    for old in same_system:
        retire(old)
    folder.mkdir(parents=True, exist_ok=True)
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    if (folder / ".incoming" / stem).exists():
        os.replace(folder / ".incoming" / stem, folder / stem)
    shutil.rmtree(folder / ".incoming", ignore_errors=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(new_bytes)
    tmp.replace(target)  # the record last: its presence means its statistics are there
    state = "replaced" if same_system else "added"
    copies = [(src, folder / stem / dst.relative_to(folder / ".incoming" / stem)) for src, dst in copies]
    return AddResult(spec.board, target, state, [dst for _, dst in copies], eligibility_reasons(spec, load(target)),
                     note=lr.note)
