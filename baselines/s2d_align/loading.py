"""Loading an S2D-Align checkpoint: config, non-LLM weights (incl. the memory bank), LLM, LoRA, tokenizer.

Layout (am_mrg's, without memories: S2D-Align's memory is a trained parameter)::

    config.json  model.safetensors  tokenizer files  llm/ (bundled)  lora/ (lora=true)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from baselines.am_mrg.loading import llm_location, llm_sha256, load_llm
from baselines.am_mrg.model import LORA_DIR, torch_dtype
from baselines.s2d_align.configuration import S2DAlignConfig
from baselines.s2d_align.model import S2DAlign
from bench.errors import UsageError, WeightsUnavailable


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
    location = llm_location(directory, saved)
    if verify_llm and saved.llm_sha256 and Path(location).is_dir():
        actual = llm_sha256(location)
        if actual != saved.llm_sha256:
            raise WeightsUnavailable(f"s2d_align: the LLM at {location} (sha256 {actual[:16]}…) is not the one this "
                                     f"checkpoint was trained with ({saved.llm_sha256[:16]}…)")
    llm = load_llm(location, saved.llm_revision, torch_dtype(saved.llm_dtype))
    if saved.lora:
        from peft import PeftModel

        llm = PeftModel.from_pretrained(llm, directory / LORA_DIR, is_trainable=trainable_lora)
    model = S2DAlign(config, llm)
    if saved.lora and trainable_lora:
        for name, p in model.llm.named_parameters():
            p.requires_grad_("lora_" in name or "modules_to_save" in name)
    model.load_own_weights(directory, allow_missing)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model.set_tokenizer(tokenizer)
    return model.eval(), tokenizer
