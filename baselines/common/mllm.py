"""What the two image-prefix LLM models (am_mrg's ``AMMRG``, s2d_align's ``S2DAlign``) share: encoding
a study's images into one token sequence, and their checkpoint — written, read back and loaded
with its LLM the same way.

Checkpoint layout::

    config.json  model.safetensors (every weight except the LLM's)  tokenizer files
    llm/ (the LLM, when bundled)  lora/ (the LoRA adapter, when the config says lora)

s2d_align builds on this public base rather than on am_mrg's classes, so neither model reaches
into the other's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rrg_bench.baselines.common.llm import load_checkpoint_llm
from rrg_bench.baselines.common.lora import LORA_DIR, base_llm_state, train_only_lora
from rrg_bench.baselines.common.vision import encode_studies
from rrg_bench.errors import UsageError

WEIGHTS = "model.safetensors"

M = TypeVar("M", bound="ImagePrefixLLM")


class ImagePrefixLLM(nn.Module):
    """Base of a model with ``config`` (a pydantic config with ``model_type``, ``lora`` and
    ``save``), ``vision_encoder`` and ``llm``; subclasses build the modules between them."""

    config: Any
    vision_encoder: nn.Module
    #: a transformers causal LM, peft-wrapped when the config says ``lora``
    llm: Any

    def set_tokenizer(self, tokenizer: Any) -> None:
        """Take the token ids the model needs (BOS, EOS, PAD, prompt pieces) from its tokenizer."""
        raise NotImplementedError

    def encode_images(self, pixel_values: torch.Tensor, image_counts: Sequence[int] | None = None) -> torch.Tensor:
        """(N_images, 3, S, S) -> (B, T, D_v): a study's images' token sequences averaged."""
        return encode_studies(self.vision_encoder, pixel_values, image_counts)

    def _image_features(self, pixel_values: torch.Tensor | None, image_counts: Sequence[int] | None,
                        image_features: torch.Tensor | None) -> torch.Tensor:
        """``image_features`` when given (the feature cache), else the encoder's on ``pixel_values``."""
        if image_features is not None:
            return image_features
        if pixel_values is None:
            raise ValueError("pass pixel_values or image_features")
        return self.encode_images(pixel_values, image_counts)

    def own_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the LLM (saved by reference, bundled, or as a LoRA adapter)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if not k.startswith("llm.")}

    def save(self, directory: Path, tokenizer: Any, *, bundle_llm: bool) -> None:
        """``config.json``, ``model.safetensors`` (non-LLM weights), tokenizer, ``lora/`` and
        (``bundle_llm``) the LLM in ``llm/``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory)
        save_file(self.own_state_dict(), str(directory / WEIGHTS))
        tokenizer.save_pretrained(directory)
        if self.config.lora:
            self.llm.save_pretrained(directory / LORA_DIR)
        if bundle_llm:
            base = self.llm.get_base_model() if self.config.lora else self.llm
            state = base_llm_state(base) if self.config.lora else None
            base.save_pretrained(directory / "llm", state_dict=state)

    def load_own_weights(self, directory: Path, allow_missing: Sequence[str] = ()) -> None:
        """Load ``model.safetensors``; ``allow_missing`` prefixes may be absent (a module a later
        training stage adds)."""
        state = load_file(str(Path(directory) / WEIGHTS))
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("llm.") and not k.startswith(tuple(allow_missing))]
        unexpected = [k for k in unexpected if not k.startswith(tuple(allow_missing))]
        if missing or unexpected:
            raise ValueError(f"{self.config.model_type} weights in {directory} do not match the config: missing "
                             f"{missing[:5]}, unexpected {unexpected[:5]}")


def load_prefix_llm(build: Callable[[Any, nn.Module], M], directory: Path, saved: Any, config: Any | None = None, *,
                    verify_llm: bool, trainable_lora: bool, allow_missing: Sequence[str] = ()) -> tuple[M, Any]:
    """(model on CPU, tokenizer) of the checkpoint in ``directory`` whose config is ``saved``:
    ``build(config or saved, llm)`` with the checkpoint's LLM (checked against its recorded hash
    when ``verify_llm``), its own weights and its tokenizer. ``config`` replaces the saved one for a
    next training stage (same architecture, new stage settings)."""
    from transformers import AutoTokenizer

    model_type = saved.model_type
    llm = load_checkpoint_llm(directory, saved, model=model_type, verify=verify_llm, trainable_lora=trainable_lora)
    model = build(config or saved, llm)
    if saved.lora and trainable_lora:
        train_only_lora(model.llm)
    model.load_own_weights(directory, allow_missing)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model.set_tokenizer(tokenizer)
    return model, tokenizer


def require_config(directory: Path, model: str) -> Path:
    """``directory`` if it holds a ``config.json`` (a checkpoint), else a usage error naming ``model``."""
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise UsageError(f"{model} checkpoint {directory} has no config.json")
    return directory


def recipe_llm(recipe: Any, *, model: str, seed: int, tiny_tokenizer: Callable[[], Any]
               ) -> tuple[nn.Module, Any, dict[str, Any], bool]:
    """(LLM, tokenizer, the config's LLM fields, bundle_llm) for a first training stage.

    ``recipe.tiny``: a random tiny Llama with ``tiny_tokenizer()`` (always bundled). Otherwise
    ``recipe.llm`` at ``llm_revision`` in ``llm_dtype``; an external LLM is recorded by reference and
    content hash, so a checkpoint refuses to run on different LLM files."""
    from rrg_bench.baselines.common.dtype import torch_dtype
    from rrg_bench.baselines.common.llm import llm_sha256, load_llm

    if recipe.tiny:
        from rrg_bench.baselines.common.tiny import build_tiny_llm

        tokenizer = tiny_tokenizer()
        return build_tiny_llm(tokenizer, seed), tokenizer, {"llm": "llm"}, True
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(recipe.llm, revision=recipe.llm_revision)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token  # labels come from the mask
    llm = load_llm(recipe.llm, recipe.llm_revision, torch_dtype(recipe.llm_dtype), model=model)
    if recipe.bundle_llm:
        return llm, tokenizer, {"llm": "llm"}, True
    return llm, tokenizer, {"llm": recipe.llm, "llm_revision": recipe.llm_revision,
                            "llm_sha256": llm_sha256(recipe.llm)}, False


def apply_recipe_lora(model: ImagePrefixLLM, recipe: Any) -> None:
    """Wrap ``model.llm`` with the recipe's LoRA adapters when ``recipe.lora``."""
    from rrg_bench.baselines.common.lora import apply_lora

    if recipe.lora:
        model.llm = apply_lora(model.llm, recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_targets,
                               recipe.lora_modules_to_save)
