"""Loading an S2D-Align checkpoint: config, non-LLM weights (incl. the memory bank), LLM, LoRA, tokenizer.

Layout (am_mrg's, without memories: S2D-Align's memory is a trained parameter)::

    config.json  model.safetensors  tokenizer files  llm/ (bundled)  lora/ (lora=true)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rrg_bench.baselines.am_mrg.model import LORA_DIR, torch_dtype
from rrg_bench.baselines.common.llm import load_checkpoint_llm, train_only_lora
from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig
from rrg_bench.baselines.s2d_align.model import S2DAlign
from rrg_bench.errors import UsageError


def load_model(directory: Path, *, verify_llm: bool = True, trainable_lora: bool = False,
               config: S2DAlignConfig | None = None, allow_missing: Sequence[str] = ()) -> tuple[S2DAlign, object]:
    """(model in eval mode on CPU, tokenizer). ``config`` replaces the saved one (a next curriculum
    stage: same architecture, new stage settings); ``allow_missing`` names weights it may add."""
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise UsageError(f"s2d_align checkpoint {directory} has no config.json")
    saved = S2DAlignConfig.load(directory)
    config = config or saved
    llm = load_checkpoint_llm(directory, saved, torch_dtype(saved.llm_dtype), LORA_DIR, model="s2d_align",
                              verify=verify_llm, trainable_lora=trainable_lora)
    model = S2DAlign(config, llm)
    if saved.lora and trainable_lora:
        train_only_lora(model.llm)
    model.load_own_weights(directory, allow_missing)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model.set_tokenizer(tokenizer)
    return model.eval(), tokenizer
