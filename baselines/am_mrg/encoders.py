"""Which vision encoder a stage-2 checkpoint uses, rebuilt from its saved config, and where the
encoder's starting weights come from.

Why a module: the paper's encoder (ARM-L, ``model_type`` "arm") is our own class, while the named
substitutes (ViT-L and other ``transformers`` encoders) are rebuilt by ``baselines.common.vision``;
one ``build_vision_encoder`` keeps a checkpoint's config the only thing that decides. ARM-L's
weights are the authors' ``MambaXrayCLIP-L.pth`` (MambaXray-VL stage 2), read as AM-MRG reads it:
the ``model`` entry, keys containing ``visual_encoder.`` with that prefix removed, loaded strictly
(Event-AHU/Medical_Image_Analysis@fc615ec:AM_MRG/models/AM_MRG.py, ``__init__``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rrg_bench.baselines.am_mrg.arm import ARMConfig, ARMEncoder
from rrg_bench.baselines.am_mrg.pickles import load_checkpoint
from rrg_bench.baselines.common.vision import build_vision_encoder as build_hf_encoder
from rrg_bench.errors import DataError

ARM = "arm"
CLIP_PREFIX = "visual_encoder."


def arm_large_config() -> dict[str, Any]:
    """ARM-L at 224 px as AM-MRG runs it (``arm_large_pz16``): 197 tokens of 1,024-d."""
    return ARMConfig().model_dump()


def tiny_arm_config(image_size: int = 56) -> dict[str, Any]:
    """A 2-block ARM of width 32 at ``image_size`` px, patch 14 (56 px: 16 patches + the class token)."""
    return ARMConfig.sized(32, image_size=image_size, patch_size=14, num_hidden_layers=2, d_state=4,
                           num_classes=8).model_dump()


def build_vision_encoder(spec: dict[str, Any]) -> torch.nn.Module:
    """A randomly initialised encoder of the saved architecture: ARM for ``model_type`` "arm", else the
    ``transformers`` class the config names (weights are loaded by the caller)."""
    if spec.get("model_type") == ARM:
        return ARMEncoder(ARMConfig.model_validate(spec))
    return build_hf_encoder(spec)


def mambaxray_encoder_state(checkpoint: Any, source: Path) -> dict[str, torch.Tensor]:
    """The ``visual_encoder.*`` tensors of a MambaXray-VL/AM-MRG checkpoint, prefix removed."""
    model = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(model, dict):
        raise DataError(f"{source}: no 'model' state dict (expected MambaXray-VL's save_checkpoint layout)")
    state = {k.split(CLIP_PREFIX, 1)[1]: v for k, v in model.items() if CLIP_PREFIX in k}
    if not state:
        raise DataError(f"{source}: no visual_encoder.* tensors in its 'model' entry")
    return state


def load_arm_weights(encoder: ARMEncoder, source: str) -> dict[str, Any]:
    """Load ``MambaXrayCLIP-L.pth`` (a path or the ``mambaxray-clip-l`` weights entry) into ``encoder``
    strictly, as the authors do; returns its provenance."""
    from rrg_bench.baselines.am_mrg.weights import locate
    from rrg_bench.hashing import sha256_file_memo

    path = locate(source, "vision_model")
    if not path.is_file():
        raise DataError(f"ARM weights {path} is not a file: expected MambaXrayCLIP-L.pth "
                        "(`bench weights fetch mambaxray-clip-l --from FILE`)")
    state = mambaxray_encoder_state(load_checkpoint(path), path)
    try:
        missing, unexpected = encoder.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise DataError(f"{path} does not fit this ARM: {str(exc).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise DataError(f"{path} does not fit ARM {encoder.config.hidden_size}-d x {encoder.config.num_hidden_layers}"
                        f": missing {missing[:4]}, unexpected {unexpected[:4]}")
    return {"file": path.name, "sha256": sha256_file_memo(path), "tensors": len(state)}
