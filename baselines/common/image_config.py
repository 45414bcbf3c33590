"""The image preprocessing a checkpoint records (size, normalisation, resampling), and how a new
checkpoint picks it from its vision encoder. Light on purpose: configurations import it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class ImageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = 224
    mean: list[float] = [0.485, 0.456, 0.406]
    std: list[float] = [0.229, 0.224, 0.225]
    resample: Literal["bicubic", "bilinear", "lanczos"] = "bicubic"


def image_config_for(vision_model: str, revision: str | None, vision: dict[str, Any]) -> ImageConfig:
    """The encoder's own normalisation when its image processor is available, else ImageNet's."""
    size = int(vision.get("image_size", 224))
    try:
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(vision_model, revision=revision)
        return ImageConfig(size=size, mean=list(processor.image_mean), std=list(processor.image_std))
    except Exception:  # no preprocessor_config.json: ImageNet statistics (the authors' Swin processor)
        return ImageConfig(size=size)
