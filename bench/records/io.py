"""Reading and writing record files. Writing is append-only: a record is never replaced.

Why: a number in a paper must stay findable, and a later command (a ``--limit`` rerun, a
re-score with other metrics, a run on a machine without Java) must not silently destroy the
record of a complete run. Each record therefore lives in its own directory named by its
fingerprint, built in a temporary directory and published by one ``rename``, which fails if
the name exists — so two processes can never interleave their files in one record.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from rrg_bench.errors import BenchError
from rrg_bench.records.schema import READABLE_SCHEMAS, ResultsRecord

RECORD_FILE = "results.json"


def record_json(record: ResultsRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"


def write_record_file(record: ResultsRecord, path: Path) -> None:
    """Write ``path`` atomically (temp file, fsync, rename); the caller guarantees it is new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(record_json(record))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def publish_record_dir(target: Path, fill: Callable[[Path], ResultsRecord]) -> tuple[Path, bool]:
    """Create the record directory ``target`` once: ``fill(tmp_dir)`` writes the statistics files and
    returns the record, which is written last; then the directory is renamed into place.

    Returns (path of results.json, created). If ``target`` already exists (the same computation
    was recorded before, or by a concurrent process) nothing is replaced and ``created`` is False.
    """
    target = Path(target)
    if (target / RECORD_FILE).is_file():
        return target / RECORD_FILE, False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        record = fill(tmp)
        write_record_file(record, tmp / RECORD_FILE)
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the record from other users
        try:
            os.rename(tmp, target)  # fails when target exists: records are never replaced
        except OSError:
            if (target / RECORD_FILE).is_file():
                return target / RECORD_FILE, False
            raise
        return target / RECORD_FILE, True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_record(path: Path) -> ResultsRecord:
    """A ``results.json`` (any readable schema), validated; errors name the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: no results record here (was the run completed?)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: not a valid JSON results record ({exc})") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read the record ({exc.strerror or exc})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_SCHEMAS:
        raise BenchError(f"{path}: schema {version!r}, this harness reads {', '.join(READABLE_SCHEMAS)}")
    try:
        return ResultsRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BenchError(f"{path}: invalid record at {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
