"""Loading a stage-2 checkpoint: config, weights, memories (checked by sha256), LLM, LoRA, tokenizer.

Layout of a checkpoint directory::

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

from rrg_bench.errors import UsageError
from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig
from rrg_bench.baselines.am_mrg.memory import REPORT, VISUAL, load_memory
from rrg_bench.baselines.am_mrg.model import AMMRG, LORA_DIR, torch_dtype
from rrg_bench.baselines.common.llm import load_checkpoint_llm, train_only_lora

MEMORIES = "memories"


def load_model(directory: Path, *, verify_llm: bool = True, trainable_lora: bool = False) -> tuple[AMMRG, object]:
    """(model in eval mode on CPU, tokenizer). Refuses memory files whose sha256 differs from the
    config's, and (``verify_llm``) an external LLM whose files differ from the ones trained with."""
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise UsageError(f"am_mrg checkpoint {directory} has no config.json")
    config = AMMRGConfig.load(directory)
    visual = load_memory(directory / MEMORIES, VISUAL, config.visual_memory_sha256)
    report = load_memory(directory / MEMORIES, REPORT, config.report_memory_sha256)
    llm = load_checkpoint_llm(directory, config, torch_dtype(config.llm_dtype), LORA_DIR, model="am_mrg",
                              verify=verify_llm, trainable_lora=trainable_lora)
    model = AMMRG(config, llm)
    if config.lora and trainable_lora:
        train_only_lora(model.llm)
    model.load_own_weights(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model.set_tokenizer(tokenizer)
    model.set_memories(visual, report)
    return model.eval(), tokenizer
