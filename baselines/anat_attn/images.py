"""Image preprocessing as the authors do it: RGB, resize to a square, ToTensor, ImageNet mean/std.

The resize + normalisation is the shared ``baselines.common.images`` (decoding is
``baselines.image_io``); this module binds it to an ``AnatAttnConfig``, so the segmenter, the
encoder and the training cache all see exactly the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from rrg_bench.baselines.common.images import load_image, load_images

__all__ = ["load_image", "load_batch"]


def load_batch(paths: Sequence[Path], config, study_ids: Sequence[str] | None = None) -> torch.Tensor:
    """(B, 3, S, S) for an ``AnatAttnConfig``'s image size, normalisation and resampling."""
    return load_images(paths, config.image_size, config.image_mean, config.image_std, config.image_resample, study_ids)
