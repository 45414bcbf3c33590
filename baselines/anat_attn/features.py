"""Disk cache of frozen-encoder features and grid masks, so epochs after the first train only the decoder.

The encoder never changes during training (frozen, eval mode), so its patch features for an image are
a constant: computing them once and memory-mapping them turns every later epoch into adapter +
GPT-2 work only. A cache directory is named by the hash of everything that determines its content
(encoder weights, image preprocessing, mask source, the ordered image list with sizes and mtimes);
any change gives a new directory instead of silently stale features. Rows are filled with a
``done`` flag each, so a killed build resumes where it stopped, and under ``accelerate launch`` each
process fills its own rows (i ≡ rank mod world) of the shared files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from baselines.anat_attn.images import load_batch
from baselines.anat_attn.masks import GridMaskProvider, state_dict_sha256


@dataclass(frozen=True)
class ImageItem:
    study_id: str
    image: Path


def _items_sha256(items: Sequence[ImageItem]) -> str:
    h = hashlib.sha256()
    for item in items:
        stat = item.image.stat()
        h.update(f"{item.study_id}\0{item.image}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_identity(model, provider: GridMaskProvider | None, items: Sequence[ImageItem], dtype: str) -> dict[str, Any]:
    c = model.config
    return {
        "format": 1,
        "vision_sha256": state_dict_sha256(model.vision_encoder),
        "image": {
            "size": c.image_size,
            "mean": list(c.image_mean),
            "std": list(c.image_std),
            "resample": c.image_resample,
            "tokens_to_skip": c.tokens_to_skip,
        },
        "masks": provider.fingerprint() if provider is not None else None,
        "dtype": dtype,
        "items_sha256": _items_sha256(items),
        "n": len(items),
    }


class FeatureCache:
    """Memory-mapped ``features.npy`` (n, N, D), optional ``masks.npy`` (n, G, G), ``done.npy`` (n,)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.features = np.load(self.directory / "features.npy", mmap_mode="r")
        masks_path = self.directory / "masks.npy"
        self.masks = np.load(masks_path, mmap_mode="r") if masks_path.is_file() else None

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def row(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = torch.from_numpy(np.array(self.features[index], dtype=np.float32))
        mask = torch.from_numpy(np.array(self.masks[index], dtype=np.float32)) if self.masks is not None else None
        return feats, mask


def _create(directory: Path, identity: dict[str, Any], n: int, tokens: int, dim: int, grid: int | None, dtype: str) -> None:
    from numpy.lib.format import open_memmap

    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "meta.json").is_file():
        return
    open_memmap(directory / "features.npy", mode="w+", dtype=np.dtype(dtype), shape=(n, tokens, dim)).flush()
    if grid is not None:
        open_memmap(directory / "masks.npy", mode="w+", dtype=np.float32, shape=(n, grid, grid)).flush()
    open_memmap(directory / "done.npy", mode="w+", dtype=np.bool_, shape=(n,)).flush()
    tmp = directory / "meta.json.tmp"
    tmp.write_text(json.dumps(identity, indent=1, sort_keys=True))
    tmp.replace(directory / "meta.json")


@torch.no_grad()
def build_feature_cache(
    model,
    items: Sequence[ImageItem],
    provider: GridMaskProvider | None,
    cache_root: Path,
    *,
    batch_size: int,
    dtype: str,
    device: torch.device | str,
    process_index: int = 0,
    num_processes: int = 1,
    barrier=lambda: None,
    progress: bool = False,
    desc: str = "caching features",
) -> FeatureCache:
    """Fill (or reuse) the cache for ``items``; returns a read-only view. ``model`` is the unwrapped
    model with its encoder on ``device``; ``barrier`` is ``accelerator.wait_for_everyone``."""
    identity = cache_identity(model, provider, items, dtype)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    directory = Path(cache_root) / key
    c = model.config
    grid = c.grid_size if provider is not None else None
    if process_index == 0:
        _create(directory, identity, len(items), c.num_image_tokens, c.vision_config.hidden_size, grid, dtype)
    barrier()
    features = np.load(directory / "features.npy", mmap_mode="r+")
    masks = np.load(directory / "masks.npy", mmap_mode="r+") if grid is not None else None
    done = np.load(directory / "done.npy", mmap_mode="r+")
    todo = [i for i in range(len(items)) if i % num_processes == process_index and not done[i]]
    batches = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]
    iterator = batches
    if progress and batches:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, desc=desc, unit="batch", leave=False)
    for rows in iterator:
        paths = [items[i].image for i in rows]
        pixels = load_batch(paths, c, [items[i].study_id for i in rows])
        feats = model.encode_images(pixels.to(device)).float().cpu().numpy()
        features[rows] = feats.astype(features.dtype)
        if masks is not None:
            masks[rows] = provider.grid_masks(paths, pixels).numpy()
            masks.flush()
        features.flush()
        done[rows] = True
        done.flush()
    barrier()
    if not bool(np.asarray(done).all()):
        missing = int((~np.asarray(done)).sum())
        raise RuntimeError(f"feature cache {directory}: {missing} rows were not filled")
    del features, masks, done
    return FeatureCache(directory)
