"""``bench train --model anat_attn``: the LAnA training loop (single process or ``accelerate launch``).

Output directory::

    recipe.json                 resolved preset + overrides + data identity (a resume must match it)
    loss_log.jsonl              one line per optimizer step, evaluation and epoch
    checkpoints/step-XXXXXXXX/  model/ (save_pretrained + tokenizer), accelerate/ (optimizer,
                                scheduler, RNG), trainer_state.json — written atomically
    best/                       best validation loss (save_pretrained + tokenizer [+ segmenters/])
    final/                      weights at the end of training
    feature_cache/              encoder features + grid masks (unless feature_cache_dir is set)

The loop itself (schedules, accumulation, clipping, evaluation, early stopping, checkpoints and
exact resume) is the shared ``baselines.common.trainloop``, and the splits (never the test split),
run identity and loaders are ``baselines.common.session``'s; this module supplies LAnA's data,
model set-up, masks and feature cache.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rrg_bench.api.training import TrainRequest
from rrg_bench.api.types import Study
from rrg_bench.baselines.anat_attn.features import FeatureCache, ImageItem, build_feature_cache
from rrg_bench.baselines.anat_attn.loading import bundled_segmenters, load_model, resolve_checkpoint, save_checkpoint
from rrg_bench.baselines.anat_attn.masks import GridMaskProvider, SegmenterMasks, mask_source_for
from rrg_bench.baselines.anat_attn.presets import TrainRecipe, resolve_recipe
from rrg_bench.baselines.common.collate import IGNORE_INDEX, pad_token_ids
from rrg_bench.baselines.common.images import pixel_values, select_image
from rrg_bench.baselines.common.session import TrainingSession
from rrg_bench.baselines.common.trainloop import ModelIO
from rrg_bench.errors import UsageError

__all__ = ["train", "Collator", "ReportDataset", "tokenize_reports"]

TRAINING_INFO = "anat_attn_training.json"


# ------------------------------------------------------------------ data
@dataclass(frozen=True)
class Example:
    study_id: str
    image: Path
    token_ids: tuple[int, ...]


def tokenize_reports(tokenizer: Any, studies: Sequence[Study], max_text_tokens: int, *, eos: bool = True,
                     bos: int | None = None) -> list[Example]:
    """report tokens (+ EOS unless ``eos=False``, the authors' targets), truncated to the text positions
    (a truncated report keeps no EOS); ``bos`` first when given (lana_radgen's ``prepend_bos_token``, a
    target like any other token, LWA@a017e7b:src/lana_radgen/data/datasets.py ``_tokenize_report``)."""
    start = [bos] if bos is not None else []
    end = [tokenizer.eos_token_id] if eos else []
    out = []
    for study in studies:
        ids = start + tokenizer(study.reference, add_special_tokens=False)["input_ids"] + end
        ids = ids[:max_text_tokens + len(start)]
        out.append(Example(study.study_id, select_image(study, "frontal"), tuple(ids)))
    return out


class ReportDataset(torch.utils.data.Dataset):
    """Rows of a split: token ids plus either cached features/masks or the image to encode."""

    def __init__(self, examples: Sequence[Example], cache: FeatureCache | None, config: Any) -> None:
        self.examples, self.cache, self.config = list(examples), cache, config

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ex = self.examples[index]
        item: dict[str, Any] = {"input_ids": ex.token_ids, "image_path": str(ex.image)}
        if self.cache is not None:
            feats, mask = self.cache.row(index)
            item["image_features"] = feats
            if mask is not None:
                item["grid_masks"] = mask
        else:
            item["pixel_values"] = pixel_values(ex.image, self.config.image, ex.study_id)
        return item


class Collator:
    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        ids, attn = pad_token_ids([it["input_ids"] for it in items], self.pad_id)
        # labels from the attention mask, not from the pad id: EOS is a target even if pad == eos
        labels = ids.masked_fill(attn == 0, IGNORE_INDEX)
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": attn, "labels": labels}
        for key in ("image_features", "grid_masks", "pixel_values"):
            if key in items[0]:
                batch[key] = torch.stack([it[key] for it in items])
        batch["image_paths"] = [it["image_path"] for it in items]
        return batch


# ------------------------------------------------------------------ model setup
def _initial_model(recipe: TrainRecipe, train_studies: Sequence[Study], resume_from: Path | None
                   ) -> tuple[Any, Any, Path | None, Any]:
    """(model, tokenizer, directory with bundled ``segmenters/`` or None, fresh tiny segmenters or None)."""
    from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration
    from rrg_bench.baselines.anat_attn.tiny import build_tiny_model, build_tiny_segmenters, train_tokenizer

    mechanism: dict[str, Any] = dict(
        attention_mode=recipe.attention_mode,
        attention_strength=recipe.attention_strength,
        bias_rows=recipe.bias_rows,
        mask_source=recipe.mask_source,
        decode_bias=recipe.decode_bias,
        train_bias=recipe.train_bias,
    )
    if resume_from is not None:
        model, tokenizer = load_model(resume_from / "model")
        return model, tokenizer, bundled_segmenters(resume_from / "model"), None
    if recipe.init_checkpoint:
        directory = resolve_checkpoint(recipe.init_checkpoint, recipe.init_revision, require_revision=False)
        model, tokenizer = load_model(directory, **mechanism)
        return model, tokenizer, bundled_segmenters(directory), None
    if recipe.tiny:
        tokenizer = train_tokenizer((s.reference for s in train_studies), vocab_size=recipe.tiny_vocab_size)
        model = build_tiny_model(
            tokenizer, image_size=recipe.image_size, text_positions=recipe.tiny_text_positions, **mechanism
        )
        return model, tokenizer, None, build_tiny_segmenters() if recipe.masks in ("auto", "segmenter") else None
    from transformers import GPT2TokenizerFast

    vision = backbone_dir(recipe.vision_model, recipe.vision_revision, "image encoder")
    decoder = backbone_dir(recipe.decoder_model, recipe.decoder_revision, "text decoder")
    model = AnatAttnForReportGeneration.from_components(str(vision), str(decoder), image_size=recipe.image_size,
                                                        **mechanism)
    tokenizer = GPT2TokenizerFast.from_pretrained(decoder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels come from the attention mask, so EOS is still trained
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, None, None


def _save_fresh_segmenters(session: TrainingSession, segmenters: Any) -> Path:
    """Tiny init: the random tiny segmenters, saved where ``masks=auto`` finds them."""
    bundled = session.out / "tiny_segmenters"
    if session.main:
        for name, segmenter in zip(("lung", "heart"), segmenters):
            segmenter.save_pretrained(bundled / "segmenters" / name)
    session.accelerator.wait_for_everyone()
    return bundled


def _mask_provider(recipe: TrainRecipe, model: Any, bundled: Path | None, out: Path, device: str
                   ) -> GridMaskProvider | None:
    """The grid masks of every training image (cached under ``out/mask_cache``); None for mode=none."""
    if not model.needs_masks:
        return None
    source = mask_source_for(recipe, mask_source=model.config.mask_source, bundled_dir=bundled, device=device)
    if source is None:
        raise UsageError(f"attention_mode={model.config.attention_mode} needs masks; masks=none gives none")
    return GridMaskProvider(source, model.config.prior_grid, cache_dir=out / "mask_cache",
                            prior=model.config.prior_kind)


def _feature_cache(session: TrainingSession, recipe: TrainRecipe, model: Any, provider: GridMaskProvider | None,
                   examples: list[Example], name: str) -> FeatureCache | None:
    """Frozen-encoder features (and grid masks) of ``examples``, computed once and memory-mapped."""
    if not recipe.feature_cache or not examples:
        return None
    accelerator = session.accelerator
    items = [ImageItem(e.study_id, e.image) for e in examples]
    return build_feature_cache(
        model, items, provider, session.cache_root(recipe.feature_cache_dir),
        batch_size=recipe.cache_batch_size, dtype=recipe.cache_dtype, device=accelerator.device,
        process_index=accelerator.process_index, num_processes=accelerator.num_processes,
        barrier=accelerator.wait_for_everyone, progress=session.request.progress and session.main,
        desc=f"encoding {name} images",
    )


# ------------------------------------------------------------------ the run
def train(request: TrainRequest) -> Path:
    """Train per preset + overrides; returns the checkpoint directory to evaluate: ``final/`` when the
    recipe says so (``paper*``), else best by validation loss when a validation split was used."""
    preset_name, recipe = resolve_recipe(request.preset, request.overrides)
    session = TrainingSession.open(request, preset_name, recipe, model="anat_attn", images="frontal")
    resume_from = session.prepare()

    model, tokenizer, bundled, fresh_segmenters = _initial_model(recipe, session.splits.train, resume_from)
    if fresh_segmenters is not None:
        bundled = _save_fresh_segmenters(session, fresh_segmenters)
    device = session.accelerator.device
    model.to(device)
    provider = _mask_provider(recipe, model, bundled, session.out, str(device))
    # segmenters computed the masks, so every saved model carries them (``masks=auto`` finds them)
    carried = provider.source if provider is not None and isinstance(provider.source, SegmenterMasks) else None

    max_text = min(model.config.max_text_tokens, recipe.max_text_tokens or model.config.max_text_tokens)
    bos = model.config.bos_token_id if model.config.start_with_bos else None
    train_examples = tokenize_reports(tokenizer, session.splits.train, max_text, eos=recipe.train_eos, bos=bos)
    val_examples = tokenize_reports(tokenizer, session.splits.val, max_text, eos=recipe.train_eos, bos=bos)
    started = time.perf_counter()
    train_cache = _feature_cache(session, recipe, model, provider, train_examples, request.train_split)
    val_cache = _feature_cache(session, recipe, model, provider, val_examples, request.val_split or "val")
    cache_seconds = time.perf_counter() - started

    collate = Collator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    loaders = session.loaders(ReportDataset(train_examples, train_cache, model.config),
                              ReportDataset(val_examples, val_cache, model.config), collate)

    def write_model(unwrapped: Any, directory: Path) -> None:
        segmenters = {"lung": carried.lung, "heart": carried.heart} if carried is not None else None
        save_checkpoint(unwrapped, tokenizer, directory, segmenters)

    io = ModelIO(compute_loss=lambda model_, unwrapped, batch: model_(**_model_inputs(batch, unwrapped, provider)).loss,
                 write_model=write_model, info_name=TRAINING_INFO,
                 training_info=lambda kind, state: session.info(
                     kind, state, masks=provider.fingerprint() if provider is not None else None))
    trained = session.fit(model, loaders, io, start_fields={"preset": preset_name, "cache_seconds": cache_seconds})
    # the authors' ablations tested the weights in memory at the end of training, not a selected checkpoint
    return session.out / "final" if recipe.evaluate_checkpoint == "final" else trained


def backbone_dir(ref: str, revision: str | None, role: str) -> Path:
    """A starting model as a local directory, never a transformers download inside ``from_pretrained``:
    a directory as is; the paper's backbones through ``rrg_bench.weights`` (``bench weights fetch``); any
    other hub id through the local HF cache or a pinned download. Missing weights are a
    ``WeightsUnavailable`` naming what to fetch and where to put it."""
    from rrg_bench import weights
    from rrg_bench.baselines.anat_attn.weights import BACKBONES

    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if ref in BACKBONES and revision is None:
        return weights.resolve(BACKBONES[ref])
    return weights.hub_snapshot(ref, revision, local_files_only=False, who=f"anat_attn {role}",
                                fix=f"Download it where the Hub is reachable and pass its local directory "
                                    f"(--set {'vision' if role == 'image encoder' else 'decoder'}_model=DIR).")


def _model_inputs(batch: dict[str, Any], model: Any, provider: GridMaskProvider | None) -> dict[str, Any]:
    """Batch -> forward kwargs; without the feature cache, encode images (and fetch masks) here."""
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
    if "image_features" in batch:
        inputs["image_features"] = batch["image_features"]
        if "grid_masks" in batch:
            inputs["grid_masks"] = batch["grid_masks"]
        return inputs
    pixels = batch["pixel_values"]
    inputs["image_features"] = model.encode_images(pixels)
    if provider is not None:
        paths = [Path(p) for p in batch["image_paths"]]
        inputs["grid_masks"] = provider.grid_masks(paths, pixels.cpu()).to(pixels.device)
    return inputs
