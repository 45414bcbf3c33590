"""Image preprocessing shared by the trainable baselines: RGB, square resize, ToTensor, mean/std.

Decoding (16-bit PNGs, broken or missing files) is ``baselines.image_io``; this module adds the
resize and normalisation that pretrained ViT/DINOv3/Swin encoders expect, so training, feature
caches and generation all see exactly the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from rrg_bench.baselines.image_io import load_image as decode_image

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(
    path: Path,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    resample: str = "bicubic",
    study_id: str | None = None,
) -> torch.Tensor:
    """(3, size, size) float32, normalised. Grayscale radiographs are replicated to RGB."""
    rgb = decode_image(path, mode="RGB", study_id=study_id).resize((size, size), RESAMPLE[resample])
    return normalise(rgb, mean, std)


def normalise(rgb: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """An RGB PIL image (already at its final size) -> normalised (3, H, W) float32 tensor."""
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (tensor - mean_t) / std_t


def load_images(
    paths: Sequence[Path],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    resample: str = "bicubic",
    study_ids: Sequence[str | None] | None = None,
) -> torch.Tensor:
    """(B, 3, size, size) for ``paths``; ``study_ids`` name the study in a missing-file error."""
    ids = study_ids if study_ids is not None else [None] * len(paths)
    return torch.stack([load_image(p, size, mean, std, resample, sid) for p, sid in zip(paths, ids)])
