"""The vision side shared by the LLM-based models (am_mrg, s2d_align): the preprocessing a checkpoint
records, its encoder rebuilt from a saved ``transformers`` config, and one token sequence per study.

A checkpoint stores its encoder as a config dict (with ``model_type``) rather than a class, so the
encoder is a config choice and both models rebuild it the same way. Light on purpose (pydantic at
import time, transformers inside the functions): configurations import ``ImageConfig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageConfig(BaseModel):
    """Square resize + normalisation, recorded in a checkpoint so generation sees training's pixels."""

    model_config = ConfigDict(extra="forbid")

    size: int = 224
    mean: list[float] = list(IMAGENET_MEAN)
    std: list[float] = list(IMAGENET_STD)
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


def build_hf_config(spec: dict[str, Any]) -> Any:
    """A ``transformers`` config from a saved dict (``model_type`` picks the class)."""
    from transformers import AutoConfig

    spec = dict(spec)
    return AutoConfig.for_model(spec.pop("model_type"), **spec)


def build_vision_encoder(spec: dict[str, Any]) -> torch.nn.Module:
    """A randomly initialised encoder of the saved architecture (weights are loaded by the caller);
    no pooler, because every model here reads the last hidden state."""
    from transformers import AutoModel

    config = build_hf_config(spec)
    extra = {"add_pooling_layer": False} if config.model_type in ("vit", "swin", "dinov2") else {}
    return AutoModel.from_config(config, **extra)


def encoder_width(encoder: torch.nn.Module) -> int:
    """Width of an encoder's tokens: its config's ``hidden_size`` (``transformers`` encoders and
    am_mrg's ARM alike). ``nn.Module`` types an unknown attribute as a tensor or sub-module; ``config``
    is neither (a plain attribute holding a ``transformers`` or pydantic config), so it is read untyped."""
    config: Any = encoder.config
    return int(config.hidden_size)


def encode_studies(encoder: torch.nn.Module, pixel_values: torch.Tensor,
                   image_counts: Sequence[int] | None = None) -> torch.Tensor:
    """(N_images, 3, S, S) -> (B, T, D): each study's images encoded and their token sequences
    averaged (``image_counts[i]`` consecutive images belong to study i; default: one each), as the
    AM-MRG authors do for multi-view studies."""
    import torch

    dtype = next(encoder.parameters()).dtype
    tokens = encoder(pixel_values=pixel_values.to(dtype)).last_hidden_state
    if image_counts is None:
        return tokens
    return torch.stack([chunk.mean(dim=0) for chunk in torch.split(tokens, [int(c) for c in image_counts])])
