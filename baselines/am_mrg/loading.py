"""Loading a stage-2 checkpoint: config, weights, memories (checked by sha256), LLM, LoRA, tokenizer.

Layout of a checkpoint directory (``baselines.common.mllm``'s, plus the memories)::

    config.json            AMMRGConfig (architecture, prompt, LLM reference, memory hashes, decoding)
    model.safetensors      every weight except the LLM's
    tokenizer files        the LLM's tokenizer
    memories/visual.*      visual memory (+ provenance json)
    memories/report.*      report memory (+ provenance json)
    llm/                   the LLM, when bundled (tiny models, or bundle_llm=true)
    lora/                  the LoRA adapter, when trained with lora=true
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig
from rrg_bench.baselines.am_mrg.memory import REPORT, VISUAL, load_memory
from rrg_bench.baselines.am_mrg.model import AMMRG
from rrg_bench.baselines.common.mllm import load_prefix_llm, require_config

MEMORIES = "memories"


def load_model(directory: Path, *, verify_llm: bool = True, trainable_lora: bool = False) -> tuple[AMMRG, Any]:
    """(model in eval mode on CPU, tokenizer). Refuses memory files whose sha256 differs from the
    config's, and (``verify_llm``) an external LLM whose files differ from the ones trained with."""
    directory = require_config(directory, "am_mrg")
    config = AMMRGConfig.load(directory)
    visual = load_memory(directory / MEMORIES, VISUAL, config.visual_memory_sha256)
    report = load_memory(directory / MEMORIES, REPORT, config.report_memory_sha256)
    model, tokenizer = load_prefix_llm(AMMRG, directory, config, verify_llm=verify_llm, trainable_lora=trainable_lora)
    model.set_memories(visual, report)
    return model.eval(), tokenizer
