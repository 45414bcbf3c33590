"""The ``am_mrg`` generator: a stage-2 checkpoint writing a report from each study's images.

Decoding defaults are the authors' (beam 3, repetition penalty 2.0, length penalty 2.0, no
sampling) with the min/max new tokens the checkpoint's training dataset prescribes (IU X-Ray 40/100,
MIMIC-CXR 80/120), all overridable. Every prompt has the same length, so batches need no padding
and a study's report does not depend on its batch mates. A study that contributed to either memory
is refused: memories are built from the train split and must never hold an evaluated study.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # the model module imports torch, and `bench ls` imports this one
    from rrg_bench.baselines.am_mrg.model import AMMRG


class AMMRGParams(LLMDecodingParams):
    checkpoint: str = Field(description="am_mrg stage-2 checkpoint: local directory or hub id (with revision), or a "
                                        "directory holding the authors' released files (imported on first use)")
    llm: str | None = Field(None, description="authors' released files: the LLM they were trained with (directory or "
                                              "hub id; default meta-llama/Llama-2-7b-chat-hf)")
    llm_revision: str | None = Field(None, description="authors' released files: the LLM's hub commit")
    memory_seed: int = Field(42, description="authors' released files: seed of the memory sampling (theirs: 42)")
    allow_test_memory: bool = Field(False, description="evaluate a test split although a memory holds reports of "
                                                       "that dataset's test split (the authors' report memory)")


#: params that only matter for the authors' released files (left out of the fingerprint at their defaults, so
#: the fingerprints of checkpoints trained here are the ones they had before these params existed)
_RELEASE_PARAMS = ("llm", "llm_revision", "memory_seed", "allow_test_memory")
AUTHORS_LLM = "meta-llama/Llama-2-7b-chat-hf"


class AMMRGGenerator(CheckpointGenerator):
    """AM-MRG (arXiv 2501.03458) re-implemented; see baselines/am_mrg/CARD.md."""

    name = "am_mrg"
    version = "1"
    needs_images = True
    Params = AMMRGParams
    params: AMMRGParams
    _model: AMMRG | None
    checkpoint_model = "am_mrg"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._memory_ids: set[str] = set()

    def _resolved(self) -> Any:
        """The checkpoint directory; the authors' released files are imported into the cache first."""
        from pathlib import Path

        if self._checkpoint_dir is None:
            from rrg_bench.baselines.am_mrg.release import import_cached, is_release

            p = self.params
            source = Path(p.checkpoint).expanduser()
            if is_release(source):
                self._checkpoint_dir = import_cached(source, llm=p.llm or AUTHORS_LLM, llm_revision=p.llm_revision,
                                                     seed=p.memory_seed)
        return super()._resolved()

    def setup(self, ctx: GeneratorContext) -> None:
        from rrg_bench.baselines.am_mrg.loading import MEMORIES, load_model
        from rrg_bench.baselines.am_mrg.memory import REPORT, VISUAL, memory_study_ids

        directory = self._resolved()
        self._refuse_test_memory(directory / MEMORIES, ctx)
        model, tokenizer = load_model(directory, verify_llm=self.params.verify_llm)
        self._device = ctx.device
        self._model = model.to(ctx.device).eval()
        self._tokenizer = tokenizer
        memories = directory / MEMORIES
        self._memory_ids = memory_study_ids(memories, VISUAL) | memory_study_ids(memories, REPORT)

    def _refuse_test_memory(self, memories: Any, ctx: GeneratorContext) -> None:
        """A memory made from a dataset family's test reports never meets that family's test split unasked."""
        from rrg_bench.baselines.am_mrg.memory import REPORT, VISUAL, memory_provenance

        family = ctx.dataset.split("/", 1)[0]
        for name in (VISUAL, REPORT):
            meta = memory_provenance(memories, name)
            if meta.get("split") == "test" and meta.get("dataset") == family and ctx.split == "test" \
                    and not self.params.allow_test_memory:
                raise UsageError(f"am_mrg: the checkpoint's {name} memory was built from {family} test reports "
                                 f"({meta.get('source', 'see memories/' + name + '.json')}), so evaluating "
                                 f"{ctx.dataset} {ctx.split} would leak them; pass allow_test_memory=true to "
                                 "reproduce the authors' setting anyway (the record keeps the switch)")

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
        defaults = AMMRGParams.model_fields
        for key in _RELEASE_PARAMS:
            if fp["params"].get(key) == defaults[key].default:
                fp["params"].pop(key)
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
