"""What every dataset says when the user's copy differs from its manifest, and where it looks.

Why shared: a user who edits one reference must get the same kind of message from every
dataset — the differing studies by name (the first 20, then a count), never a bare "mismatch".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rrg_bench.errors import DataError

#: how many differing studies an error message names before it only counts
MAX_NAMED = 20


def name_some(items: Sequence[str], limit: int = MAX_NAMED) -> str:
    """``"a; b; c"`` for the first ``limit`` items, then ``"; ... (N more)"``."""
    shown = "; ".join(items[:limit])
    rest = len(items) - limit
    return shown + (f"; ... ({rest} more)" if rest > 0 else "")


def mismatch_error(dataset: str, split: str, n_total: int, problems: Sequence[str], where: str,
                   hint: str = "") -> DataError:
    """One-line ``DataError`` naming the first differing studies and how many differ."""
    message = (
        f"{dataset} {split}: {len(problems)} of {n_total} studies differ from the manifest ({where}): "
        f"{name_some(problems)}"
    )
    return DataError(message + (f". {hint}" if hint else ""))


def find_dataset_root(data_root: Path | None, subdirs: Sequence[str], markers: Sequence[str]) -> Path | None:
    """``data_root`` itself or ``data_root/<subdir>`` — whichever holds one of ``markers``.

    One ``BENCH_DATA_ROOT`` can hold every dataset (``<root>/iu_xray``, ``<root>/mimic_cxr/official``)
    or point straight at one dataset's folder; both work.
    """
    if data_root is None:
        return None
    for candidate in (data_root, *(data_root / s for s in subdirs)):
        if any((candidate / m).exists() for m in markers):
            return candidate
    return None
