"""What every manifest-backed dataset shares: its committed manifest, loaded once, how a
missing file is reported, and how a user's JSON file is read.

Why here: each dataset module used to keep its own cached loader and its own way of turning an
error into a ``bench data verify`` line, and the line then repeated the instructions the
report prints anyway.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from rrg_bench.api.dataset import VerifyReport
from rrg_bench.errors import DataError
from rrg_bench.manifests import Manifest, load_manifest


@functools.cache
def committed_manifest(name: str) -> Manifest:
    """The committed manifest ``name``, read and parsed once per process (its rows are cached too)."""
    return load_manifest(name)


def note_missing(report: VerifyReport, exc: DataError) -> None:
    """Add ``exc`` to ``report.missing`` without its trailing how-to-get text.

    The error carries the instructions for whoever meets it in ``bench run``; the verify report
    prints them once below its lines, so they must not be repeated in each line.
    """
    message = str(exc)
    if report.how_to_get and message.endswith(report.how_to_get):
        message = message[: -len(report.how_to_get)].rstrip()
    report.missing.append(message)


def read_json(path: Path) -> Any:
    """A user's JSON file; a ``DataError`` naming the file (and line) if it cannot be read."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
