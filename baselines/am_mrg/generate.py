"""The ``am_mrg`` generator: a stage-2 checkpoint writing a report from each study's images.

Decoding defaults are the authors' (beam 3, repetition penalty 2.0, length penalty 2.0, no
sampling) with the min/max new tokens the checkpoint's training dataset prescribes (IU X-Ray 40/100,
MIMIC-CXR 80/120), all overridable. Every prompt has the same length, so batches need no padding
and a study's report does not depend on its batch mates. A study that contributed to either memory
is refused: memories are built from the train split and must never hold an evaluated study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

from bench.errors import UsageError
from bench.generator import Generator, GeneratorContext
from bench.types import Generation, Study


class AMMRGParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="am_mrg stage-2 checkpoint: local directory or hub id (with revision)")
    revision: str | None = Field(None, description="hub commit id (required for hub ids)")
    num_beams: int = Field(3, ge=1)
    repetition_penalty: float = Field(2.0, gt=0)
    length_penalty: float = 2.0
    min_new_tokens: int | None = Field(None, ge=0, description="default: the checkpoint's (dataset's) value")
    max_new_tokens: int | None = Field(None, ge=1, description="default: the checkpoint's (dataset's) value")
    no_repeat_ngram_size: int = Field(0, ge=0)
    #: check an external LLM's files against the sha256 recorded at training
    verify_llm: bool = True


class AMMRGGenerator(Generator):
    """AM-MRG (arXiv 2501.03458) re-implemented; see baselines/am_mrg/CARD.md."""

    name = "am_mrg"
    version = "1"
    needs_images = True
    Params = AMMRGParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model = None
        self._tokenizer = None
        self._memory_ids: set[str] = set()
        self._checkpoint_dir: Path | None = None
        self._checkpoint_sha256: str | None = None
        self._device = "cpu"

    def _resolved(self) -> Path:
        from baselines.common.checkpoints import checkpoint_sha256, resolve_checkpoint

        if self._checkpoint_dir is None:
            self._checkpoint_dir = resolve_checkpoint(self.params.checkpoint, self.params.revision, model="am_mrg")
        if self._checkpoint_sha256 is None:
            self._checkpoint_sha256 = checkpoint_sha256(self._checkpoint_dir)
        return self._checkpoint_dir

    def setup(self, ctx: GeneratorContext) -> None:
        from baselines.am_mrg.loading import MEMORIES, load_model
        from baselines.am_mrg.memory import REPORT, VISUAL, memory_study_ids

        directory = self._resolved()
        model, tokenizer = load_model(directory, verify_llm=self.params.verify_llm)
        self._device = ctx.device
        self._model = model.to(ctx.device).eval()
        self._tokenizer = tokenizer
        self._memory_ids = memory_study_ids(directory / MEMORIES, VISUAL) | memory_study_ids(directory / MEMORIES, REPORT)

    def _images(self, study: Study) -> list[Path]:
        from baselines.image_io import select_image

        if self._model.config.images == "all" and study.image_paths:
            return [Path(p) for p in study.image_paths]
        return [select_image(study, "frontal")]

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        import torch

        from baselines.common.images import load_images

        if self._model is None:
            raise RuntimeError("AMMRGGenerator.generate called before setup")
        leaked = [s.study_id for s in batch if s.study_id in self._memory_ids]
        if leaked:
            raise UsageError(f"am_mrg: studies {', '.join(leaked[:3])} are in the checkpoint's memories (built from "
                             "its train split); evaluating them would leak their reports")
        model = self._model
        c = model.config.image
        per_study = [self._images(s) for s in batch]
        paths = [p for ps in per_study for p in ps]
        ids = [s.study_id for s, ps in zip(batch, per_study) for _ in ps]
        pixels = load_images(paths, c.size, c.mean, c.std, c.resample, ids)
        decoding = self.decoding()
        beam = {"length_penalty": decoding["length_penalty"]} if decoding["num_beams"] > 1 else {}
        with torch.inference_mode():
            out = model.generate_reports(
                pixel_values=pixels.to(self._device), image_counts=[len(ps) for ps in per_study],
                num_beams=decoding["num_beams"], repetition_penalty=decoding["repetition_penalty"],
                min_new_tokens=decoding["min_new_tokens"], max_new_tokens=decoding["max_new_tokens"],
                no_repeat_ngram_size=decoding["no_repeat_ngram_size"], **beam,
            )
        eos = model.eos_id
        results = []
        for study, row in zip(batch, out.tolist()):
            stopped = eos in row
            tokens = row[: row.index(eos)] if stopped else row
            text = self._tokenizer.decode(tokens, skip_special_tokens=True).strip()
            results.append(Generation(study.study_id, " ".join(text.split()), {"n_tokens": len(tokens), "eos": stopped}))
        return results

    def decoding(self) -> dict[str, Any]:
        """Effective decoding settings: params, else the checkpoint's dataset defaults."""
        from baselines.am_mrg.configuration import AMMRGConfig

        c = AMMRGConfig.load(self._resolved())
        p = self.params
        return {
            "strategy": "beam" if p.num_beams > 1 else "greedy",
            "num_beams": p.num_beams,
            "repetition_penalty": p.repetition_penalty,
            "length_penalty": p.length_penalty,
            "min_new_tokens": p.min_new_tokens if p.min_new_tokens is not None else c.min_new_tokens,
            "max_new_tokens": p.max_new_tokens if p.max_new_tokens is not None else c.max_new_tokens,
            "no_repeat_ngram_size": p.no_repeat_ngram_size,
        }

    def fingerprint(self) -> dict[str, Any]:
        """Params + checkpoint content hash (weights, memories, bundled LLM, tokenizer) + the external
        LLM and its recorded hash + memory hashes + effective decoding; the same before and after setup."""
        from baselines.am_mrg.configuration import AMMRGConfig

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
