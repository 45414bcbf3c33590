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

from bench.errors import UsageError, WeightsUnavailable
from baselines.am_mrg.configuration import AMMRGConfig
from baselines.am_mrg.memory import REPORT, VISUAL, load_memory
from baselines.am_mrg.model import AMMRG, LORA_DIR, torch_dtype
from baselines.common.checkpoints import CHECKPOINT_PATTERNS, checkpoint_sha256

MEMORIES = "memories"


def llm_location(directory: Path, config: AMMRGConfig) -> str:
    """The LLM's directory (bundled: relative to the checkpoint) or hub id."""
    path = Path(config.llm).expanduser()
    if not path.is_absolute() and (Path(directory) / path).is_dir():
        return str((Path(directory) / path).resolve())
    return config.llm


def llm_sha256(location: str) -> str:
    """Content hash of a local LLM directory's weight/config/tokenizer files ("" for hub ids)."""
    path = Path(location)
    return checkpoint_sha256(path, CHECKPOINT_PATTERNS) if path.is_dir() else ""


def load_llm(location: str, revision: str | None, dtype):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(location, revision=revision, dtype=dtype)
    except OSError as exc:
        raise WeightsUnavailable(f"am_mrg: cannot load the LLM {location!r} ({exc}). Download it where the Hub is "
                                 "reachable and pass its local directory (--set llm=DIR, or keep it at the path the "
                                 "checkpoint names).") from None


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
    location = llm_location(directory, config)
    if verify_llm and config.llm_sha256 and Path(location).is_dir():
        actual = llm_sha256(location)
        if actual != config.llm_sha256:
            raise WeightsUnavailable(f"am_mrg: the LLM at {location} (sha256 {actual[:16]}…) is not the one this "
                                     f"checkpoint was trained with ({config.llm_sha256[:16]}…)")
    llm = load_llm(location, config.llm_revision, torch_dtype(config.llm_dtype))
    if config.lora:
        from peft import PeftModel

        llm = PeftModel.from_pretrained(llm, directory / LORA_DIR, is_trainable=trainable_lora)
    model = AMMRG(config, llm)
    if config.lora and trainable_lora:
        for name, p in model.llm.named_parameters():
            p.requires_grad_("lora_" in name or "modules_to_save" in name)
    model.load_own_weights(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model.set_tokenizer(tokenizer)
    model.set_memories(visual, report)
    return model.eval(), tokenizer
