"""A tiny, randomly initialised LAnA of the *same classes*, buildable offline in about a second.

Tests, CLI tests and smoke runs need a real checkpoint directory (config, safetensors, tokenizer,
segmenters) without the Hub: a 2-layer DINOv3 at 128 px (patch 16 -> 8 x 8 grid, 4 registers), a
3-layer GPT-2 (the most an 8 x 8 grid supports: the blur's reflect padding must stay below the
grid) and a byte-level BPE tokenizer trained on the given reports (``baselines.common.tiny``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DINOv3ConvNextConfig,
    DINOv3ViTConfig,
    DINOv3ViTModel,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from rrg_bench.baselines.anat_attn.loading import save_checkpoint
from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration
from rrg_bench.baselines.anat_attn.segmenter import AnatSegmenter, AnatSegmenterConfig
from rrg_bench.baselines.common.tiny import train_bpe_tokenizer

EOS = "<|endoftext|>"
PAD = "<pad>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2's scheme) trained on ``texts``; EOS and a separate PAD token."""
    return train_bpe_tokenizer(texts, vocab_size, eos=EOS, pad=PAD)


def tiny_vision_config(image_size: int = 128) -> DINOv3ViTConfig:
    return DINOv3ViTConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        patch_size=16,
        image_size=image_size,
        num_register_tokens=4,
    )


def tiny_segmenter_config(kind: str) -> AnatSegmenterConfig:
    backbone = DINOv3ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1])
    make = AnatSegmenterConfig.lung if kind == "lung" else AnatSegmenterConfig.heart
    return make(backbone_config=backbone, adapter_channels=16, head_channels=[16, 8, 8])


def build_tiny_model(
    tokenizer: PreTrainedTokenizerFast,
    *,
    image_size: int = 128,
    text_positions: int = 96,
    n_layer: int = 3,
    n_embd: int = 64,
    n_head: int = 2,
    seed: int = 0,
    **config_kwargs: Any,
) -> AnatAttnForReportGeneration:
    """Random tiny encoder + decoder wired by the same ``assemble`` as the real model (so the position
    table goes through the same interpolation)."""
    torch.manual_seed(seed)
    vision = DINOv3ViTModel(tiny_vision_config(image_size))
    lm = GPT2LMHeadModel(
        GPT2Config(
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            vocab_size=len(tokenizer),
            n_positions=text_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    model = AnatAttnForReportGeneration.assemble(
        vision, lm, image_size=image_size, text_positions=text_positions, **config_kwargs
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:  # always, for a model that can generate
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_tiny_segmenters(seed: int = 0) -> tuple[AnatSegmenter, AnatSegmenter]:
    torch.manual_seed(seed + 1)
    return AnatSegmenter(tiny_segmenter_config("lung")), AnatSegmenter(tiny_segmenter_config("heart"))


def build_tiny_checkpoint(
    out_dir: Path | str,
    train_reports: Iterable[str],
    *,
    vocab_size: int = 512,
    image_size: int = 128,
    text_positions: int = 96,
    with_segmenters: bool = True,
    seed: int = 0,
    **config_kwargs: Any,
) -> Path:
    """Write a complete tiny checkpoint (model, tokenizer, optional tiny segmenters) to ``out_dir``.

    ``config_kwargs`` go to ``AnatAttnConfig`` (e.g. ``attention_mode="none"``, ``bias_rows=...``).
    """
    tokenizer = train_tokenizer(train_reports, vocab_size=vocab_size)
    model = build_tiny_model(
        tokenizer, image_size=image_size, text_positions=text_positions, seed=seed, **config_kwargs
    )
    segmenters = dict(zip(("lung", "heart"), build_tiny_segmenters(seed))) if with_segmenters else None
    return save_checkpoint(model, tokenizer, Path(out_dir), segmenters)
