"""Image preprocessing as the authors do it: RGB, resize to a square, ToTensor, ImageNet mean/std.

Decoding (16-bit PNGs, broken files, missing files) is the shared ``baselines.image_io`` loader;
this module only adds LAnA's resize and normalisation, so the segmenter, the encoder and the
training cache all see exactly the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from baselines.image_io import load_image as decode_image

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
    study_id: str | None = None,
) -> torch.Tensor:
    """(3, size, size) float32, normalised. Grayscale radiographs are replicated to RGB."""
    rgb = decode_image(path, mode="RGB", study_id=study_id).resize((size, size), _RESAMPLE[resample])
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (tensor - mean_t) / std_t


def load_batch(paths: Sequence[Path], config, study_ids: Sequence[str] | None = None) -> torch.Tensor:
    """(B, 3, S, S) for an ``AnatAttnConfig``'s image size, normalisation and resampling."""
    ids = study_ids if study_ids is not None else [None] * len(paths)
    return torch.stack([
        load_image(p, config.image_size, config.image_mean, config.image_std, config.image_resample, sid)
        for p, sid in zip(paths, ids)
    ])
