"""The ``am_mrg`` generator: a stage-2 checkpoint writing a report from each study's images.

Decoding defaults are the authors' (beam 3, repetition penalty 2.0, length penalty 2.0, no
sampling) with the min/max new tokens the checkpoint's training dataset prescribes (IU X-Ray 40/100,
MIMIC-CXR 80/120), all overridable. Every prompt has the same length, so batches need no padding
and a study's report does not depend on its batch mates. A study that contributed to either memory
is refused: memories are built from the train split and must never hold an evaluated study.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.types import Generation, Study
from rrg_bench.baselines.common.generation import (
    CheckpointGenerator,
    LLMDecodingParams,
    batch_pixels,
    decode_rows,
    llm_decoding,
)
from rrg_bench.errors import UsageError


class AMMRGParams(LLMDecodingParams):
    checkpoint: str = Field(description="am_mrg stage-2 checkpoint: local directory or hub id (with revision)")


class AMMRGGenerator(CheckpointGenerator):
    """AM-MRG (arXiv 2501.03458) re-implemented; see baselines/am_mrg/CARD.md."""

    name = "am_mrg"
    version = "1"
    needs_images = True
    Params = AMMRGParams
    checkpoint_model = "am_mrg"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._memory_ids: set[str] = set()

    def setup(self, ctx: GeneratorContext) -> None:
        from rrg_bench.baselines.am_mrg.loading import MEMORIES, load_model
        from rrg_bench.baselines.am_mrg.memory import REPORT, VISUAL, memory_study_ids

        directory = self._resolved()
        model, tokenizer = load_model(directory, verify_llm=self.params.verify_llm)
        self._device = ctx.device
        self._model = model.to(ctx.device).eval()
        self._tokenizer = tokenizer
        self._memory_ids = memory_study_ids(directory / MEMORIES, VISUAL) | memory_study_ids(directory / MEMORIES, REPORT)

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        import torch

        if self._model is None:
            raise RuntimeError("AMMRGGenerator.generate called before setup")
        leaked = [s.study_id for s in batch if s.study_id in self._memory_ids]
        if leaked:
            raise UsageError(f"am_mrg: studies {', '.join(leaked[:3])} are in the checkpoint's memories (built from "
                             "its train split); evaluating them would leak their reports")
        model = self._model
        pixels, image_counts = batch_pixels(batch, model.config.images, model.config.image)
        decoding = self.decoding()
        beam = {"length_penalty": decoding["length_penalty"]} if decoding["num_beams"] > 1 else {}
        with torch.inference_mode():
            out = model.generate_reports(
                pixel_values=pixels.to(self._device), image_counts=image_counts,
                num_beams=decoding["num_beams"], repetition_penalty=decoding["repetition_penalty"],
                min_new_tokens=decoding["min_new_tokens"], max_new_tokens=decoding["max_new_tokens"],
                no_repeat_ngram_size=decoding["no_repeat_ngram_size"], **beam,
            )
        return [Generation(study.study_id, text, {"n_tokens": n_tokens, "eos": stopped})
                for study, (text, n_tokens, stopped) in zip(batch, decode_rows(self._tokenizer, out.tolist(),
                                                                               model.eos_id))]

    def decoding(self) -> dict[str, Any]:
        """Effective decoding settings: params, else the checkpoint's dataset defaults."""
        from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig

        return llm_decoding(self.params, AMMRGConfig.load(self._resolved()))

    def fingerprint(self) -> dict[str, Any]:
        """Params + checkpoint content hash (weights, memories, bundled LLM, tokenizer) + the external
        LLM and its recorded hash + memory hashes + effective decoding; the same before and after setup."""
        from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig

        fp = super().fingerprint()
        directory = self._resolved()
        c = AMMRGConfig.load(directory)
        fp["checkpoint_sha256"] = self._checkpoint_sha256
        fp["memories"] = {"visual_sha256": c.visual_memory_sha256, "report_sha256": c.report_memory_sha256}
        fp["llm"] = {"ref": c.llm, "revision": c.llm_revision, "sha256": c.llm_sha256, "dtype": c.llm_dtype,
                     "lora": c.lora}
        fp["encoder"] = {"model_type": c.vision_config.get("model_type"), "image_size": c.image.size,
                         "images": c.images, "prefix_tokens": c.prefix_length()}
        fp["decoding"] = self.decoding()
        return fp
