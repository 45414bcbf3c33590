"""Tiny, randomly initialised S2D-Align pieces of the real classes, buildable offline in seconds.

The ViT (56 px, patch 14: CLS + 16 tokens) and the 2-layer Llama are ``baselines.common.tiny``'s (as
am_mrg's); the byte-level BPE tokenizer is trained on the train reports plus every prompt/target
template, so the instruction, reference and key-phrase markers are in its vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rrg_bench.baselines.common.tiny import build_tiny_llm, train_chat_tokenizer
from rrg_bench.baselines.common.tiny import tiny_vit_config as tiny_vision_config
from rrg_bench.baselines.s2d_align import configuration as c

__all__ = ["TEMPLATES", "build_tiny_llm", "tiny_vision_config", "train_tokenizer"]

TEMPLATES = (c.PROMPT_HEAD, c.PROMPT_IMAGE_END, c.INSTRUCTION, c.INSTRUCTION_WITH_PHRASES, c.REFERENCES_INTRO,
             c.ASSISTANT, c.KEY_PHRASES_MARKER, c.REPORT_MARKER, c.NO_PHRASES)


def train_tokenizer(reports: Iterable[str], vocab_size: int = 512) -> Any:
    return train_chat_tokenizer([*reports, *TEMPLATES], vocab_size)
