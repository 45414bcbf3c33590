"""Disk cache of frozen-encoder features and grid masks, so epochs after the first train only the decoder.

The encoder never changes during training (frozen, eval mode), so its patch features for an image are
a constant: computing them once and memory-mapping them turns every later epoch into adapter +
GPT-2 work only. A cache directory is named by the hash of everything that determines its content
(encoder weights, image preprocessing, mask source, the ordered image list with sizes and mtimes);
any change gives a new directory instead of silently stale features. Filling (resumable per-row
``done`` flags, rows sharded across ``accelerate`` processes) is the shared
``baselines.common.feature_cache``; this module says what a LAnA cache holds and how it is keyed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rrg_bench.baselines.anat_attn.masks import GridMaskProvider
from rrg_bench.baselines.common.checkpoints import state_dict_sha256
from rrg_bench.baselines.common.feature_cache import fill_cache, images_sha256
from rrg_bench.baselines.common.images import pixel_batch


@dataclass(frozen=True)
class ImageItem:
    study_id: str
    image: Path


def cache_identity(model: Any, provider: GridMaskProvider | None, items: Sequence[ImageItem], dtype: str
                   ) -> dict[str, Any]:
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
        "items_sha256": images_sha256((item.study_id, item.image) for item in items),
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


@torch.no_grad()
def build_feature_cache(
    model: Any,
    items: Sequence[ImageItem],
    provider: GridMaskProvider | None,
    cache_root: Path,
    *,
    batch_size: int,
    dtype: str,
    device: torch.device | str,
    process_index: int = 0,
    num_processes: int = 1,
    barrier: Callable[[], Any] = lambda: None,
    progress: bool = False,
    desc: str = "caching features",
) -> FeatureCache:
    """Fill (or reuse) the cache for ``items``; returns a read-only view. ``model`` is the unwrapped
    model with its encoder on ``device``; ``barrier`` is ``accelerator.wait_for_everyone``."""
    c = model.config
    arrays = {"features": ((c.num_prefix_tokens, c.vision_config.hidden_size), dtype)}
    if provider is not None:
        arrays["masks"] = ((c.prior_grid, c.prior_grid), "float32")

    def compute(rows: Sequence[int]) -> dict[str, np.ndarray]:
        paths = [items[i].image for i in rows]
        pixels = pixel_batch(paths, c.image, [items[i].study_id for i in rows])
        out = {"features": model.encode_images(pixels.to(device)).float().cpu().numpy()}
        if provider is not None:
            out["masks"] = provider.grid_masks(paths, pixels).numpy()
        return out

    directory = fill_cache(
        cache_identity(model, provider, items, dtype), cache_root, len(items), arrays, compute,
        batch_size=batch_size, process_index=process_index, num_processes=num_processes, barrier=barrier,
        progress=progress, desc=desc,
    )
    return FeatureCache(directory)
