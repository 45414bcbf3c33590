"""Image loading as the authors do it: RGB, resize to a square, ToTensor, ImageNet mean/std.

Kept separate from the model so the segmenter, the encoder and the training cache all see the
exact same pixels (one resize, one normalisation), and a missing or corrupt file is reported by
path instead of failing deep inside a batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bench.errors import DataError

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
}


def load_image(
    path: Path,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    resample: str = "bicubic",
) -> torch.Tensor:
    """(3, size, size) float32, normalised. Grayscale radiographs are replicated to RGB."""
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((size, size), _RESAMPLE[resample])
    except FileNotFoundError:
        raise DataError(f"image not found: {path} (check --data-root; image generators need the images)") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (tensor - mean_t) / std_t


def load_batch(paths: Sequence[Path], config) -> torch.Tensor:
    """(B, 3, S, S) for an ``AnatAttnConfig``'s image size, normalisation and resampling."""
    return torch.stack(
        [load_image(p, config.image_size, config.image_mean, config.image_std, config.image_resample) for p in paths]
    )
