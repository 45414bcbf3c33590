"""Loading an S2D-Align checkpoint: config, non-LLM weights (incl. the memory bank), LLM, LoRA, tokenizer.

Layout (``baselines.common.mllm``'s; S2D-Align's memory is a trained parameter, not a file)::

    config.json  model.safetensors  tokenizer files  llm/ (bundled)  lora/ (lora=true)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrg_bench.baselines.common.mllm import load_prefix_llm, require_config
from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig
from rrg_bench.baselines.s2d_align.model import S2DAlign


def load_model(directory: Path, *, verify_llm: bool = True, trainable_lora: bool = False,
               config: S2DAlignConfig | None = None, allow_missing: Sequence[str] = ()) -> tuple[S2DAlign, Any]:
    """(model in eval mode on CPU, tokenizer). ``config`` replaces the saved one (a next curriculum
    stage: same architecture, new stage settings); ``allow_missing`` names weights it may add."""
    directory = require_config(directory, "s2d_align")
    model, tokenizer = load_prefix_llm(S2DAlign, directory, S2DAlignConfig.load(directory), config,
                                       verify_llm=verify_llm, trainable_lora=trainable_lora,
                                       allow_missing=allow_missing)
    return model.eval(), tokenizer
