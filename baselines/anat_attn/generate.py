"""The ``anat_attn`` generator: a LAnA checkpoint writing findings from each study's frontal image.

Without ``checkpoint=`` it is the authors' released paper model (``weights=lana-arxiv``, fetched with
``bench weights fetch lana-arxiv``), imported on first use into our format and cached; the record names the
source files by sha256.

Decoding defaults are the paper's (greedy, repetition penalty 1.2, 150 new tokens); beam search is a
parameter. Every prompt is exactly the N image tokens, so batches need no padding and a study's
report does not depend on which studies share its batch. Masks come from the segmenters bundled with
the checkpoint (``masks=auto``), precomputed files, a CheXmask table, or nothing for ``mode=none``
checkpoints; they are cached per image under the run's cache directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.types import Generation, Study
from rrg_bench.baselines.anat_attn.presets import MaskOptions
from rrg_bench.baselines.common.generation import CheckpointGenerator, CheckpointParams, decode_rows
from rrg_bench.errors import UsageError

if TYPE_CHECKING:
    from rrg_bench.baselines.anat_attn.masks import GridMaskProvider
    from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration


class AnatAttnParams(CheckpointParams, MaskOptions):
    """The checkpoint, its decoding (the paper's: greedy, repetition penalty 1.2, 150 new tokens) and
    where its masks come from (``MaskOptions``)."""

    checkpoint: str = Field("", description="anat_attn checkpoint: local directory or hub id (with revision); "
                                            "empty: the authors' released checkpoint named by `weights`")
    revision: str | None = Field(None, description="hub commit id (required for hub ids)")
    weights: str = Field("lana-arxiv", description="registered weights entry imported when checkpoint is empty")
    max_new_tokens: int = Field(150, ge=1)
    num_beams: int = Field(1, ge=1)
    repetition_penalty: float = Field(1.2, gt=0)
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = Field(0, ge=0)
    dtype: Literal["float32", "bfloat16"] = "float32"


class AnatAttnGenerator(CheckpointGenerator):
    """LAnA (arXiv 2512.16841) re-implemented; see baselines/anat_attn/CARD.md."""

    name = "anat_attn"
    version = "1"
    needs_images = True
    Params = AnatAttnParams
    params: AnatAttnParams
    _model: AnatAttnForReportGeneration | None
    checkpoint_model = "anat_attn"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._provider: GridMaskProvider | None = None
        self._source: dict[str, Any] | None = None

    def _resolved(self) -> Path:
        """``checkpoint`` as given, else the authors' weights imported into the cache (once per file)."""
        if self.params.checkpoint:
            return super()._resolved()
        if self._checkpoint_dir is None:
            from rrg_bench.baselines.anat_attn.importer import import_cached
            from rrg_bench.errors import WeightsUnavailable

            try:
                self._checkpoint_dir, self._source = import_cached(self.params.weights)
            except WeightsUnavailable as exc:
                raise WeightsUnavailable(f"anat_attn without checkpoint= uses the authors' released model: {exc}"
                                         ) from None
        return super()._resolved()

    def setup(self, ctx: GeneratorContext) -> None:
        from rrg_bench.baselines.anat_attn.loading import load_model
        from rrg_bench.baselines.anat_attn.masks import GridMaskProvider, mask_source_for
        from rrg_bench.baselines.common.dtype import torch_dtype

        p = self.params
        directory = self._resolved()
        self._device = ctx.device
        model, self._tokenizer = load_model(directory, dtype=torch_dtype(p.dtype))
        # transformers decorates ``to`` with functools.wraps(nn.Module.to); typeshed then types the
        # bound call as the unbound one (first argument ``self``)
        self._model = model.to(ctx.device).eval()  # type: ignore[arg-type]
        if model.needs_masks:
            source = mask_source_for(p, mask_source=model.config.mask_source, bundled_dir=directory, device=ctx.device)
            if source is None:  # masks=none
                raise UsageError(
                    f"checkpoint {p.checkpoint} uses anatomical attention "
                    f"(attention_mode={model.config.attention_mode}); masks=none is not possible"
                )
            cache_dir = Path(ctx.cache_dir) / "anat_attn" / "masks" if ctx.cache_dir else None
            self._provider = GridMaskProvider(source, model.config.prior_grid, cache_dir=cache_dir,
                                              prior=model.config.prior_kind)

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        import torch

        from rrg_bench.baselines.common.images import pixel_batch, select_image

        if self._model is None:
            raise RuntimeError("AnatAttnGenerator.generate called before setup")
        paths = [select_image(study, "frontal") for study in batch]
        model = self._model
        pixels = pixel_batch(paths, model.config.image, [s.study_id for s in batch])
        grid_masks = self._provider.grid_masks(paths, pixels) if self._provider is not None else None
        p = self.params
        beam: dict[str, Any] = {"length_penalty": p.length_penalty} if p.num_beams > 1 else {}  # to HF generate
        with torch.inference_mode():
            ids = model.generate_reports(
                pixel_values=pixels.to(self._device),
                grid_masks=grid_masks.to(self._device) if grid_masks is not None else None,
                max_new_tokens=p.max_new_tokens,
                num_beams=p.num_beams,
                repetition_penalty=p.repetition_penalty,
                no_repeat_ngram_size=p.no_repeat_ngram_size,
                **beam,
            )
        return [Generation(study.study_id, text, {"n_tokens": n_tokens, "eos": stopped})
                for study, (text, n_tokens, stopped) in zip(batch, decode_rows(self._tokenizer, ids.tolist(),
                                                                               model.config.eos_token_id))]

    def _mask_identity(self, mode: str) -> dict[str, Any] | None:
        """What determines the masks, from the params alone (bundled segmenters are inside the
        checkpoint hash; external segmenter directories and CheXmask tables are hashed here)."""
        from rrg_bench.hashing import sha256_file, sha256_tree

        p = self.params
        if mode == "none":
            return None
        kind = "segmenter" if p.masks == "auto" else p.masks
        if kind == "files":
            return {"kind": kind, "mask_dir": str(Path(p.mask_dir).expanduser().resolve()),
                    "image_root": p.mask_image_root}
        if kind == "chexmask":
            csv = Path(p.chexmask_csv).expanduser()
            if not csv.is_file():
                raise UsageError(f"chexmask_csv {csv} not found")
            return {"kind": kind, "csv_sha256": sha256_file(csv), "id_column": p.chexmask_id_column}
        external = {}
        for role, ref in (("lung", p.lung_segmenter), ("heart", p.heart_segmenter)):
            if ref:
                path = Path(ref).expanduser()
                external[role] = sha256_tree(path) if path.is_dir() else f"{ref}@{p.segmenter_revision}"
        return {"kind": kind, "segmenters": external or "bundled"}

    def fingerprint(self) -> dict[str, Any]:
        """Params + checkpoint content hash + mechanism + decoding + mask identity; the same before
        and after ``setup`` (the runner may name the run before loading the model)."""
        from rrg_bench.baselines.anat_attn.configuration import AnatAttnConfig

        fp = super().fingerprint()
        directory = self._resolved()
        fp["checkpoint_sha256"] = self._checkpoint_sha256
        if self._source is not None:
            fp["source"] = self._source
        c = AnatAttnConfig.from_pretrained(directory)
        p = self.params
        fp["mechanism"] = {
            "attention_mode": c.attention_mode,
            "attention_strength": c.attention_strength,
            "bias_rows": c.bias_rows,
            "mask_source": c.mask_source,
            "image_size": c.image_size,
            "decode_bias": c.decode_bias,
        }
        # the lana_radgen switches, named only when set so that earlier fingerprints stay as they were
        later = {"adapter_type": c.adapter_type, "prefix_tokens_to_skip": c.tokens_to_skip,
                 "start_with_bos": c.start_with_bos, "suppress_eos": c.suppress_eos, "train_bias": c.train_bias}
        if c.bias_rows == "sequence" or c.start_with_bos or c.suppress_eos or c.adapter_type != "linear":
            fp["mechanism"].update(later)
        fp["decoding"] = {
            "strategy": "greedy" if p.num_beams == 1 else "beam",
            "max_new_tokens": min(p.max_new_tokens, c.max_text_tokens),
            "num_beams": p.num_beams,
            "repetition_penalty": p.repetition_penalty,
            "length_penalty": p.length_penalty,
            "no_repeat_ngram_size": p.no_repeat_ngram_size,
            "dtype": p.dtype,
        }
        fp["masks"] = self._mask_identity(c.attention_mode)
        return fp
