"""Disk cache of frozen-encoder outputs: memory-mapped ``.npy`` arrays, one row per item, resumable.

A frozen encoder's output for an image is a constant, so computing it once and memory-mapping it
turns every later epoch into trainable-head work only. A cache directory is named by the hash of an
*identity* (everything that determines its content: encoder weights, preprocessing, the ordered
item list); any change gives a new directory instead of silently stale rows. Each row has a
``done`` flag, so a killed build resumes where it stopped, and under ``accelerate launch`` each
process fills its own rows (i ≡ rank mod world) of the shared files.

Layout of a cache directory: ``meta.json`` (the identity), ``done.npy`` (n,) and one
``<name>.npy`` (n, *shape) per array.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: array name -> (shape of one row, numpy dtype name)
ArraySpec = Mapping[str, tuple[tuple[int, ...], str]]


def images_sha256(items: Iterable[tuple[str, Path]]) -> str:
    """Identity of an ordered list of (study id, image path): each file by path, size and mtime,
    which is cheap for a million images and changes whenever a file is replaced."""
    h = hashlib.sha256()
    for study_id, path in items:
        stat = Path(path).stat()
        h.update(f"{study_id}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_directory(cache_root: Path, identity: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_root) / key


def _create(directory: Path, identity: dict[str, Any], n: int, arrays: ArraySpec) -> None:
    from numpy.lib.format import open_memmap

    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "meta.json").is_file():
        return
    for name, (shape, dtype) in arrays.items():
        open_memmap(directory / f"{name}.npy", mode="w+", dtype=np.dtype(dtype), shape=(n, *shape)).flush()
    open_memmap(directory / "done.npy", mode="w+", dtype=np.bool_, shape=(n,)).flush()
    tmp = directory / "meta.json.tmp"
    tmp.write_text(json.dumps(identity, indent=1, sort_keys=True))
    tmp.replace(directory / "meta.json")


def fill_cache(
    identity: dict[str, Any],
    cache_root: Path,
    n: int,
    arrays: ArraySpec,
    compute: Callable[[Sequence[int]], Mapping[str, np.ndarray]],
    *,
    batch_size: int,
    process_index: int = 0,
    num_processes: int = 1,
    barrier: Callable[[], Any] = lambda: None,
    progress: bool = False,
    desc: str = "caching features",
) -> Path:
    """Create (or reuse) the cache for ``identity`` and fill every row not yet done; returns its directory.

    ``compute(rows)`` returns one array per name for those row indices. ``barrier`` is
    ``accelerator.wait_for_everyone`` under ``accelerate launch``."""
    directory = cache_directory(cache_root, identity)
    if process_index == 0:
        _create(directory, identity, n, arrays)
    barrier()
    stores = {name: np.load(directory / f"{name}.npy", mmap_mode="r+") for name in arrays}
    done = np.load(directory / "done.npy", mmap_mode="r+")
    todo = [i for i in range(n) if i % num_processes == process_index and not done[i]]
    batches = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]
    iterator = batches
    if progress and batches:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, desc=desc, unit="batch", leave=False)
    for rows in iterator:
        values = compute(rows)
        for name, store in stores.items():
            store[rows] = np.asarray(values[name]).astype(store.dtype)
            store.flush()
        done[rows] = True
        done.flush()
    barrier()
    if not bool(np.asarray(done).all()):
        missing = int((~np.asarray(done)).sum())
        raise RuntimeError(f"feature cache {directory}: {missing} rows were not filled")
    del stores, done
    return directory


class ArrayCache:
    """Read-only memory-mapped view of a filled cache directory."""

    def __init__(self, directory: Path, names: Sequence[str]) -> None:
        self.directory = Path(directory)
        self.arrays = {name: np.load(self.directory / f"{name}.npy", mmap_mode="r") for name in names}

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def row(self, name: str, index: int) -> np.ndarray:
        return np.array(self.arrays[name][index], dtype=np.float32)
