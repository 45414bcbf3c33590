"""The ``s2d_align`` generator: a curriculum checkpoint writing a report from each study's images.

Inference rebuilds the inputs the checkpoint was trained on: a stage-2/3 checkpoint retrieves its
top-k reference reports from the run's *train* split with the same knn_image settings (the
evaluated study is never its own reference), and a "prefix" stage-3 checkpoint writes its key
phrases first, which are returned in ``meta`` and cut from the report. Decoding defaults are
am_mrg's (beam 3, repetition and length penalty 2.0; S2D-Align's are unknown), all overridable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bench.generator import Generator, GeneratorContext
from bench.types import Generation, Study


class S2DAlignParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="s2d_align checkpoint (any stage): local directory or hub id")
    revision: str | None = Field(None, description="hub commit id (required for hub ids)")
    num_beams: int = Field(3, ge=1)
    repetition_penalty: float = Field(2.0, gt=0)
    length_penalty: float = 2.0
    min_new_tokens: int | None = Field(None, ge=0, description="default: the checkpoint's (dataset's) value")
    max_new_tokens: int | None = Field(None, ge=1, description="default: the checkpoint's (dataset's) value")
    no_repeat_ngram_size: int = Field(0, ge=0)
    verify_llm: bool = True


class S2DAlignGenerator(Generator):
    """S2D-Align (arXiv 2511.11066), open approximation; see baselines/s2d_align/CARD.md."""

    name = "s2d_align"
    version = "1"
    needs_images = True
    Params = S2DAlignParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model = None
        self._tokenizer = None
        self._index = None
        self._index_source = ""
        self._directory: Path | None = None
        self._sha256: str | None = None
        self._device = "cpu"

    def _resolved(self) -> Path:
        from baselines.common.checkpoints import checkpoint_sha256, resolve_checkpoint

        if self._directory is None:
            self._directory = resolve_checkpoint(self.params.checkpoint, self.params.revision, model="s2d_align")
        if self._sha256 is None:
            self._sha256 = checkpoint_sha256(self._directory)
        return self._directory

    def setup(self, ctx: GeneratorContext) -> None:
        from baselines.s2d_align.loading import load_model

        model, tokenizer = load_model(self._resolved(), verify_llm=self.params.verify_llm)
        self._device = ctx.device
        self._model = model.to(ctx.device).eval()
        self._tokenizer = tokenizer
        c = model.config
        if c.references_k:
            from baselines.s2d_align.references import ReferenceIndex, index_studies

            train, self._index_source = index_studies(self._resolved(), ctx.dataset, ctx.train_studies())
            split = train[0].split if train else "train"
            self._index = ReferenceIndex(train, split=split, encoder=c.retrieval_encoder, revision=c.retrieval_revision,
                                         image=c.retrieval_image, device=ctx.device, cache_dir=ctx.cache_dir,
                                         batch_size=max(1, ctx.batch_size), dataset=ctx.dataset)

    def _images(self, study: Study) -> list[Path]:
        from baselines.image_io import select_image

        if self._model.config.images == "all" and study.image_paths:
            return [Path(p) for p in study.image_paths]
        return [select_image(study, "frontal")]

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        import torch

        from baselines.common.images import load_images
        from baselines.s2d_align.configuration import (
            KEY_PHRASES_MARKER,
            REPORT_MARKER,
            report_from_output,
        )
        from baselines.s2d_align.train import reference_tails

        if self._model is None:
            raise RuntimeError("S2DAlignGenerator.generate called before setup")
        model, c = self._model, self._model.config
        neighbours = self._index.neighbours(batch, c.references_k) if self._index is not None else [[] for _ in batch]
        tails = reference_tails(c, self._tokenizer, neighbours)
        per_study = [self._images(s) for s in batch]
        ids = [s.study_id for s, ps in zip(batch, per_study) for _ in ps]
        pixels = load_images([p for ps in per_study for p in ps], c.image.size, c.image.mean, c.image.std,
                             c.image.resample, ids)
        d = self.decoding()
        beam = {"length_penalty": d["length_penalty"]} if d["num_beams"] > 1 else {}
        with torch.inference_mode():
            out = model.generate_ids(tails, pixel_values=pixels.to(self._device),
                                     image_counts=[len(ps) for ps in per_study], num_beams=d["num_beams"],
                                     repetition_penalty=d["repetition_penalty"], min_new_tokens=d["min_new_tokens"],
                                     max_new_tokens=d["max_new_tokens"],
                                     no_repeat_ngram_size=d["no_repeat_ngram_size"], **beam)
        results = []
        for study, row, refs in zip(batch, out.tolist(), neighbours):
            stopped = model.eos_id in row
            tokens = row[: row.index(model.eos_id)] if stopped else row
            raw = " ".join(self._tokenizer.decode(tokens, skip_special_tokens=True).split())
            meta: dict[str, Any] = {"n_tokens": len(tokens), "eos": stopped, "references": [r for r, _ in refs]}
            if c.phrases_in_target:
                meta["key_phrases"] = raw.split(REPORT_MARKER, 1)[0].replace(KEY_PHRASES_MARKER, "").strip(" .")
            results.append(Generation(study.study_id, report_from_output(c, raw), meta))
        return results

    def decoding(self) -> dict[str, Any]:
        from baselines.s2d_align.configuration import S2DAlignConfig

        c = S2DAlignConfig.load(self._resolved())
        p = self.params
        return {"strategy": "beam" if p.num_beams > 1 else "greedy", "num_beams": p.num_beams,
                "repetition_penalty": p.repetition_penalty, "length_penalty": p.length_penalty,
                "min_new_tokens": p.min_new_tokens if p.min_new_tokens is not None else c.min_new_tokens,
                "max_new_tokens": p.max_new_tokens if p.max_new_tokens is not None else c.max_new_tokens,
                "no_repeat_ngram_size": p.no_repeat_ngram_size}

    def fingerprint(self) -> dict[str, Any]:
        """Params + checkpoint content hash + stage, LLM reference, retrieval settings (and the train
        index once set up) + effective decoding; the same before and after setup except the index."""
        from baselines.s2d_align.configuration import S2DAlignConfig

        fp = super().fingerprint()
        c = S2DAlignConfig.load(self._resolved())
        fp["checkpoint_sha256"] = self._sha256
        fp["stage"] = c.stage
        fp["llm"] = {"ref": c.llm, "revision": c.llm_revision, "sha256": c.llm_sha256, "dtype": c.llm_dtype,
                     "lora": c.lora}
        fp["retrieval"] = {"k": c.references_k, "encoder": c.retrieval_encoder, "revision": c.retrieval_revision,
                           "image": c.retrieval_image, "max_reference_tokens": c.max_reference_tokens}
        fp["keyphrases"] = {"target": c.keyphrase_target, "source": c.keyphrase_source}
        if self._index is not None:
            fp["retrieval"]["index"] = {"source": self._index_source, **self._index.fingerprint()["train_index"]}
        fp["decoding"] = self.decoding()
        return fp
