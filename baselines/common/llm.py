"""The external (or bundled) LLM of a checkpoint: where it is, its content hash, loading it with its
LoRA adapter, and refusing an LLM whose files differ from the ones the checkpoint was trained with.

Shared by am_mrg and s2d_align, whose checkpoints store the LLM the same way (``llm/`` when
bundled, else a hub id or directory plus the sha256 recorded at training; ``lora/`` adapters).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.baselines.common.checkpoints import CHECKPOINT_PATTERNS, checkpoint_sha256
from rrg_bench.errors import WeightsUnavailable

if TYPE_CHECKING:
    import torch
    from torch import nn


def llm_location(directory: Path, config: Any) -> str:
    """The LLM's directory (bundled: relative to the checkpoint) or hub id."""
    path = Path(config.llm).expanduser()
    if not path.is_absolute() and (Path(directory) / path).is_dir():
        return str((Path(directory) / path).resolve())
    return config.llm


def llm_sha256(location: str) -> str:
    """Content hash of a local LLM directory's weight/config/tokenizer files ("" for hub ids)."""
    path = Path(location)
    return checkpoint_sha256(path, CHECKPOINT_PATTERNS) if path.is_dir() else ""


def load_llm(location: str, revision: str | None, dtype: torch.dtype, *, model: str) -> nn.Module:
    """The causal LM at ``location`` (directory or hub id); ``model`` names the caller in the error."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(location, revision=revision, dtype=dtype)
    except OSError as exc:
        raise WeightsUnavailable(f"{model}: cannot load the LLM {location!r} ({exc}). Download it where the Hub is "
                                 "reachable and pass its local directory (--set llm=DIR, or keep it at the path the "
                                 "checkpoint names).") from None


def load_checkpoint_llm(directory: Path, config: Any, *, model: str, verify: bool, trainable_lora: bool
                        ) -> nn.Module:
    """The checkpoint's LLM in ``config.llm_dtype`` (with its LoRA adapter from ``lora/`` when
    ``config.lora``). ``verify`` refuses an external LLM directory whose hash differs from
    ``config.llm_sha256``; ``model`` names the checkpoint's model in that message."""
    from rrg_bench.baselines.common.dtype import torch_dtype
    from rrg_bench.baselines.common.lora import LORA_DIR

    location = llm_location(directory, config)
    if verify and config.llm_sha256 and Path(location).is_dir():
        actual = llm_sha256(location)
        if actual != config.llm_sha256:
            raise WeightsUnavailable(f"{model}: the LLM at {location} (sha256 {actual[:16]}…) is not the one this "
                                     f"checkpoint was trained with ({config.llm_sha256[:16]}…)")
    llm = load_llm(location, config.llm_revision, torch_dtype(config.llm_dtype), model=model)
    if config.lora:
        from peft import PeftModel

        llm = PeftModel.from_pretrained(llm, Path(directory) / LORA_DIR, is_trainable=trainable_lora)
    return llm
