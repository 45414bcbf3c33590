"""LoRA on a frozen LLM (peft), the same way for every model that adapts one (am_mrg, s2d_align).

A checkpoint keeps the adapter in ``lora/`` and the frozen LLM by reference (or bundled in ``llm/``
without the adapter weights), so the helpers here wrap an LLM, choose what trains, and take the
plain LLM weights back out of a peft-wrapped model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

#: the adapter's directory inside a checkpoint
LORA_DIR = "lora"


def apply_lora(llm: nn.Module, r: int, alpha: int, dropout: float, targets: list[str],
               modules_to_save: list[str] | None = None) -> nn.Module:
    """Wrap the frozen LLM with trainable LoRA adapters (peft); the base weights stay frozen except
    ``modules_to_save`` (trained in full, saved with the adapter)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM",
                        modules_to_save=modules_to_save or None)
    return get_peft_model(llm, config)


def train_only_lora(llm: nn.Module) -> None:
    """Freeze every LLM weight except the LoRA adapters and peft's ``modules_to_save``."""
    for name, p in llm.named_parameters():
        p.requires_grad_("lora_" in name or "modules_to_save" in name)


def base_llm_state(base: nn.Module) -> dict[str, torch.Tensor]:
    """The frozen LLM's own weights out of a peft-wrapped model: ``x.base_layer.w`` -> ``x.w``,
    ``m.original_module.w`` -> ``m.w``; adapters and trained copies (saved in ``lora/``) dropped."""
    state = {}
    for key, value in base.state_dict().items():
        if "lora_" in key or ".modules_to_save." in key:
            continue
        state[key.replace(".base_layer.", ".").replace(".original_module.", ".")] = value
    return state
