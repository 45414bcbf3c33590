"""The ``s2d_align`` generator: a curriculum checkpoint writing a report from each study's images.

It is S2D-Align *unofficial, from the abstract*: no code, weights or paper body were released, so
every record, table row and plot shows it under ``display_name`` and ``unofficial`` (the runner
copies both into the record's generator block), and without ``--checkpoint`` there is nothing to
load but a checkpoint the user trained.

Inference rebuilds the inputs the checkpoint was trained on: a stage-2/3 checkpoint retrieves its
top-k reference reports from the run's *train* split with the same knn_image settings (never the
evaluated study nor a study of its patient), and a "prefix" stage-3 checkpoint writes its key
phrases first — its new-token budget is the report's plus the phrase list's — which are returned
in ``meta`` and cut from the report. Decoding defaults are am_mrg's (beam 3, repetition and length
penalty 2.0; S2D-Align's are unknown), all overridable.
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

if TYPE_CHECKING:
    from rrg_bench.baselines.s2d_align.model import S2DAlign
    from rrg_bench.baselines.s2d_align.references import ReferenceIndex

DISPLAY_NAME = "S2D-Align (unofficial, from abstract)"
#: the one line ``bench run --model s2d_align`` without ``--checkpoint`` ends in
NO_WEIGHTS = ("s2d_align is S2D-Align (unofficial, from abstract): no weights (nor code) of the paper were "
              "released, so there is nothing to download; train a checkpoint with `bench train --model s2d_align "
              "--stage 1`, then --stage 2 and --stage 3 each with --set init=<previous stage>/best, and pass it "
              "with --checkpoint DIR (recipe: `bench ls generators --card s2d_align`)")


class S2DAlignParams(LLMDecodingParams):
    checkpoint: str = Field(description="s2d_align checkpoint (any stage): local directory or hub id")


class S2DAlignGenerator(CheckpointGenerator):
    """S2D-Align (arXiv 2511.11066), unofficial, from the abstract; see baselines/s2d_align/CARD.md."""

    name = "s2d_align"
    version = "1"
    display_name = DISPLAY_NAME
    unofficial = True
    needs_images = True
    Params = S2DAlignParams
    params: S2DAlignParams
    _model: S2DAlign | None
    checkpoint_model = "s2d_align"

    def __init__(self, **params: Any) -> None:
        if not params.get("checkpoint"):  # before validation: "Field required" would not say why
            raise UsageError(NO_WEIGHTS)
        super().__init__(**params)
        self._index: ReferenceIndex | None = None
        self._index_source = ""

    def setup(self, ctx: GeneratorContext) -> None:
        from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig
        from rrg_bench.baselines.s2d_align.loading import load_model

        saved = S2DAlignConfig.load(self._resolved())
        if saved.phrases_in_target and saved.keyphrase_new_tokens == (0, 0) and self.params.max_new_tokens is None:
            raise UsageError(f"s2d_align: {self.params.checkpoint} is a stage-3 'prefix' checkpoint trained before its "
                             "phrase list had its own token budget, so its reports would be cut: train stage 3 again, "
                             "or pass --model-arg max_new_tokens=N (phrases + report)")
        model, tokenizer = load_model(self._resolved(), verify_llm=self.params.verify_llm)
        self._device = ctx.device
        self._model = model.to(ctx.device).eval()
        self._tokenizer = tokenizer
        c = model.config
        if c.references_k:
            from rrg_bench.baselines.s2d_align.references import ReferenceIndex, index_studies

            train, self._index_source = index_studies(self._resolved(), ctx.dataset, ctx.train_studies())
            split = train[0].split if train else "train"
            self._index = ReferenceIndex(train, split=split, encoder=c.retrieval_encoder, revision=c.retrieval_revision,
                                         image=c.retrieval_image, device=ctx.device, cache_dir=ctx.cache_dir,
                                         batch_size=max(1, ctx.batch_size), dataset=ctx.dataset)

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        import torch

        from rrg_bench.baselines.s2d_align.configuration import KEY_PHRASES_MARKER, REPORT_MARKER, report_from_output
        from rrg_bench.baselines.s2d_align.references import reference_tails

        if self._model is None:
            raise RuntimeError("S2DAlignGenerator.generate called before setup")
        model, c = self._model, self._model.config
        neighbours = self._index.neighbours(batch, c.references_k) if self._index is not None else [[] for _ in batch]
        tails = reference_tails(c, self._tokenizer, neighbours)
        pixels, image_counts = batch_pixels(batch, c.images, c.image)
        d = self.decoding()
        beam = {"length_penalty": d["length_penalty"]} if d["num_beams"] > 1 else {}
        with torch.inference_mode():
            out = model.generate_ids(tails, pixel_values=pixels.to(self._device),
                                     image_counts=image_counts, num_beams=d["num_beams"],
                                     repetition_penalty=d["repetition_penalty"], min_new_tokens=d["min_new_tokens"],
                                     max_new_tokens=d["max_new_tokens"],
                                     no_repeat_ngram_size=d["no_repeat_ngram_size"], **beam)
        results = []
        decoded = decode_rows(self._tokenizer, out.tolist(), model.eos_id)
        for study, (raw, n_tokens, stopped), refs in zip(batch, decoded, neighbours):
            meta: dict[str, Any] = {"n_tokens": n_tokens, "eos": stopped, "references": [r for r, _ in refs]}
            if c.phrases_in_target:
                meta["key_phrases"] = raw.split(REPORT_MARKER, 1)[0].replace(KEY_PHRASES_MARKER, "").strip(" .")
            results.append(Generation(study.study_id, report_from_output(c, raw), meta))
        return results

    def decoding(self) -> dict[str, Any]:
        """Explicit params win; the default budget is the report's plus a prefix model's phrase list."""
        from types import SimpleNamespace

        from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig

        return llm_decoding(self.params, SimpleNamespace(**S2DAlignConfig.load(self._resolved()).new_tokens()))

    def fingerprint(self) -> dict[str, Any]:
        """Params + checkpoint content hash + stage, LLM reference, retrieval settings (and the train
        index once set up) + effective decoding; the same before and after setup except the index."""
        from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig

        fp = super().fingerprint()
        c = S2DAlignConfig.load(self._resolved())
        fp["checkpoint_sha256"] = self._checkpoint_sha256
        fp["stage"] = c.stage
        fp["llm"] = {"ref": c.llm, "revision": c.llm_revision, "sha256": c.llm_sha256, "dtype": c.llm_dtype,
                     "lora": c.lora}
        fp["retrieval"] = {"k": c.references_k, "encoder": c.retrieval_encoder, "revision": c.retrieval_revision,
                           "image": c.retrieval_image, "max_reference_tokens": c.max_reference_tokens}
        fp["keyphrases"] = {"target": c.keyphrase_target, "source": c.keyphrase_source}
        if self._index is not None:
            index = self._index.fingerprint()
            fp["retrieval"]["index"] = {"source": self._index_source, **index["train_index"],
                                        "selection": index["selection"]}
        fp["decoding"] = self.decoding()
        return fp
