"""Our own predictions file: append-only JSONL with an integrity journal beside it.

Why a journal: resuming a run re-reads ``predictions.jsonl`` and scores it as the generator's
output. A file edited by hand, or with a line appended by something else, must never be scored
as such. Before each batch is appended, a journal line records its byte range and the sha256 of
every line; on resume the file is checked against the journal:

- a killed run leaves at most the batch in flight unfinished: its journal entry is dropped and
  the file cut back to where that batch began (the generator is deterministic, so regenerating
  it yields the same bytes);
- any other difference (an edited line, a complete line the run did not write) is refused with
  the line number.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rrg_bench.api.types import Generation
from rrg_bench.errors import PredictionsError
from rrg_bench.hashing import sha256_bytes

JOURNAL_SUFFIX = ".journal"


def encode_line(study_id: str, report: str) -> str:
    """The exact bytes of one prediction line: fixed key order, so resumed files are identical."""
    return json.dumps({"study_id": study_id, "report": report}, ensure_ascii=False) + "\n"


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL_SUFFIX)


def _line_hash(raw: bytes) -> str:
    return sha256_bytes(raw)[:16]


@dataclass(frozen=True)
class _Entry:
    start: int
    end: int
    lines: tuple[str, ...]

    def encode(self) -> str:
        return json.dumps({"start": self.start, "end": self.end, "lines": list(self.lines)}) + "\n"


def _fsync_append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class PredictionsWriter:
    """Appends batches; ``write_batch`` returns only after journal and data are on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)

    def write_batch(self, generations: Iterable[Generation]) -> None:
        data = "".join(encode_line(g.study_id, g.text) for g in generations).encode("utf-8")
        if not data:
            return
        start = self.path.stat().st_size
        entry = _Entry(start, start + len(data), tuple(_line_hash(r) for r in data.splitlines(keepends=True)))
        _fsync_append(journal_path(self.path), entry.encode().encode())
        _fsync_append(self.path, data)

    def __enter__(self) -> PredictionsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _read_journal(path: Path) -> list[_Entry] | None:
    jpath = journal_path(path)
    if not jpath.exists():
        return None
    entries = []
    for raw in jpath.read_bytes().split(b"\n"):
        try:
            obj = json.loads(raw)
            entries.append(_Entry(int(obj["start"]), int(obj["end"]), tuple(obj["lines"])))
        except (ValueError, KeyError, TypeError):
            break  # a torn last journal line: its batch was never appended
    return entries


def _rewrite_journal(path: Path, entries: Sequence[_Entry]) -> None:
    jpath = journal_path(path)
    tmp = jpath.with_name(jpath.name + ".tmp")
    tmp.write_text("".join(e.encode() for e in entries))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, jpath)


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def _first_foreign_line(data: bytes, entry: _Entry) -> int | None:
    """Index (within the entry) of the first line whose bytes differ from the journal, if any."""
    lines = data[entry.start:entry.end].splitlines(keepends=True)
    for i, expected in enumerate(entry.lines):
        if i >= len(lines) or _line_hash(lines[i]) != expected:
            return i
    return None if len(lines) == len(entry.lines) else len(entry.lines)


def _refuse(path: Path, lineno: int, what: str) -> PredictionsError:
    return PredictionsError(
        f"{path}:{lineno}: {what}; the predictions file is not what this run wrote, so it will not be "
        "scored as the generator's output. Restore it, or regenerate with --fresh"
    )


def verify_and_repair(path: Path) -> bytes:
    """Check ``path`` against its journal, cut back an unfinished last batch; return the good bytes."""
    path = Path(path)
    entries = _read_journal(path)
    _finish_pending_rewrite(path, entries)
    data = path.read_bytes()
    if entries is None:  # written by a first-release rrg-bench: adopt it as it is, from now on journalled
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            _truncate(path, keep)
            data = data[:keep]
        _rewrite_journal(path, _whole(data))
        return data
    lineno = 1
    for k, entry in enumerate(entries):
        if k == len(entries) - 1 and entry.end > len(data):
            written = [ln for ln in data[entry.start:].splitlines(keepends=True) if ln.endswith(b"\n")]
            bad = next((i for i, ln in enumerate(written) if i >= len(entry.lines) or _line_hash(ln) != entry.lines[i]),
                       None)
            if bad is not None:
                raise _refuse(path, lineno + bad, "this line differs from what the run wrote")
            _truncate(path, entry.start)  # the batch in flight when the run was stopped: regenerated
            _rewrite_journal(path, entries[:-1])
            return data[:entry.start]
        bad = _first_foreign_line(data, entry)
        if bad is not None:
            raise _refuse(path, lineno + bad, "this line differs from what the run wrote")
        lineno += len(entry.lines)
    end = entries[-1].end if entries else 0
    tail = data[end:]
    if tail.count(b"\n"):
        raise _refuse(path, lineno, "this line was not written by the run (appended afterwards?)")
    if tail:
        _truncate(path, end)  # a torn partial line: never a complete prediction
    return data[:end]


def parse(path: Path, data: bytes) -> dict[str, str]:
    """study_id -> report of verified bytes; a study written twice is an error naming both lines."""
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(data.splitlines(), 1):
        try:
            obj = json.loads(raw.decode("utf-8"))
            sid, report = obj["study_id"], obj["report"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PredictionsError(f"{path}:{lineno}: damaged line ({exc}); rerun with --fresh") from None
        if sid in out:
            raise PredictionsError(f"{path}:{lineno}: study {sid} appears again (first at line {first_line[sid]}); "
                                   "rerun with --fresh")
        out[sid], first_line[sid] = report, lineno
    return out


def recover(path: Path) -> dict[str, str]:
    """Our predictions file, verified against its journal (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        return {}
    return parse(path, verify_and_repair(path))


def read_unverified(path: Path) -> dict[str, str]:
    """Complete lines of another process's file, read without repairing it (it may be appending)."""
    out: dict[str, str] = {}
    for raw in Path(path).read_bytes().split(b"\n")[:-1]:
        try:
            obj = json.loads(raw)
            out[obj["study_id"]] = obj["report"]
        except (ValueError, KeyError, TypeError):
            break
    return out


def write_ordered(path: Path, predictions: dict[str, str], order: Sequence[str]) -> None:
    """Atomically (re)write ``path`` with the predictions of ``order`` in that order, journalled.

    The new journal is written before the new file is renamed into place; a crash in between is
    finished by the next ``recover`` (the temp file matches the journal)."""
    path = Path(path)
    data = "".join(encode_line(sid, predictions[sid]) for sid in order if sid in predictions).encode("utf-8")
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    _rewrite_journal(path, _whole(data))
    os.replace(tmp, path)


def _whole(data: bytes) -> list[_Entry]:
    return [_Entry(0, len(data), tuple(_line_hash(r) for r in data.splitlines(True)))] if data else []


def _finish_pending_rewrite(path: Path, entries: list[_Entry] | None) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    if not tmp.exists():
        return
    data = tmp.read_bytes()
    if entries is not None and (entries[-1].end if entries else 0) == len(data) and \
            all(_first_foreign_line(data, e) is None for e in entries):
        os.replace(tmp, path)
    else:
        tmp.unlink()
