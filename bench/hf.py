"""Hugging Face ``datasets`` as an input and output format.

``hf:ID_OR_PATH[:split]`` names a dataset: an existing path is a local dataset (a
``save_to_disk`` directory or a parquet file), anything else a Hub id (which needs the network;
``datasets`` caches it). Used for predictions (``bench score -p hf:…``), for images
(``bench run --images hf:…``) and for exporting a dataset's studies (``bench data export``).
The ``datasets`` package is imported only here, only when such a source is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrg_bench.errors import BenchError, UsageError

PREFIX = "hf:"


@dataclass(frozen=True)
class HFSource:
    location: str  # a path or a Hub id
    split: str | None

    @property
    def is_local(self) -> bool:
        return Path(self.location).expanduser().exists()

    def __str__(self) -> str:
        return PREFIX + self.location + (f":{self.split}" if self.split else "")


def is_hf(spec: str | Path) -> bool:
    return str(spec).startswith(PREFIX)


def parse(spec: str | Path) -> HFSource:
    """``hf:org/name:test`` -> (``org/name``, ``test``); ``hf:/data/preds`` -> (that path, None)."""
    text = str(spec)[len(PREFIX):] if is_hf(spec) else str(spec)
    if not text:
        raise UsageError(f"{spec!r}: expected hf:ID_OR_PATH[:split]")
    location, sep, split = text.rpartition(":")
    if sep and location and "/" not in split and not Path(text).expanduser().exists():
        return HFSource(location, split)
    return HFSource(text, None)


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise UsageError("hf: sources need the `datasets` package: pip install 'rrg-bench[hf]'") from None
    datasets.disable_progress_bars()  # rrg-bench draws its own progress; keep stderr for what matters
    return datasets


def load(source: HFSource) -> Any:
    """The ``datasets.Dataset`` of a source (one split)."""
    datasets = _datasets()
    path = Path(source.location).expanduser()
    try:
        if path.is_file() and path.suffix == ".parquet":
            data = datasets.Dataset.from_parquet(str(path))
        elif path.is_dir():
            data = datasets.load_from_disk(str(path))
        else:
            data = datasets.load_dataset(source.location, split=source.split)
    except Exception as exc:  # not a dataset, offline, gated, unknown split: name the source
        raise BenchError(f"{source}: cannot load it as a Hugging Face dataset ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(data, datasets.DatasetDict):
        splits = list(data)
        split = source.split or ("test" if "test" in data else splits[0] if len(splits) == 1 else None)
        if split not in data:
            raise UsageError(f"{source}: holds splits {', '.join(splits)}; name one as hf:{source.location}:SPLIT")
        data = data[split]
    return data


def columns_of(data: Any, source: HFSource, *wanted: str) -> None:
    missing = [c for c in wanted if c not in data.column_names]
    if missing:
        raise UsageError(f"{source}: no column {', '.join(repr(c) for c in missing)} (columns: "
                         f"{', '.join(data.column_names)}); name them with --id-col / --text-col")
