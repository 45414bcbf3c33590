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
exact resume) is the shared ``baselines.common.trainloop``; this module supplies LAnA's data,
model set-up, masks and feature cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from rrg_bench.errors import DataError, UsageError
from rrg_bench.api.training import TrainRequest
from rrg_bench.api.types import Study
from rrg_bench.baselines.anat_attn.features import FeatureCache, ImageItem, build_feature_cache
from rrg_bench.baselines.anat_attn.images import load_image
from rrg_bench.baselines.anat_attn.masks import GridMaskProvider, mask_source_for
from rrg_bench.baselines.anat_attn.presets import TrainRecipe, resolve_recipe
from rrg_bench.baselines.common.collate import pad_token_ids
from rrg_bench.baselines.common.trainloop import (EpochSampler, LossLog, TrainerState, make_optimizer, prepare_run_dir,
                                        run_training, trained_checkpoint)

__all__ = ["train", "EpochSampler", "LossLog", "TrainerState", "Collator", "ReportDataset", "usable_studies"]

IGNORE_INDEX = -100
TRAINING_INFO = "anat_attn_training.json"


# ------------------------------------------------------------------ data
@dataclass(frozen=True)
class Example:
    study_id: str
    image: Path
    token_ids: tuple[int, ...]


def usable_studies(studies: Sequence[Study]) -> tuple[list[Study], dict[str, int]]:
    """Studies with a frontal image and a non-empty reference; the rest are counted, not hidden."""
    kept, skipped = [], {"no_frontal_image": 0, "empty_reference": 0}
    for study in studies:
        if study.frontal_image is None:
            skipped["no_frontal_image"] += 1
        elif not study.reference.strip():
            skipped["empty_reference"] += 1
        else:
            kept.append(study)
    return kept, skipped


def check_images_exist(studies: Sequence[Study], split: str) -> None:
    missing = [s for s in studies if not Path(s.frontal_image).is_file()]
    if missing:
        first = ", ".join(f"{s.study_id} ({s.frontal_image})" for s in missing[:5])
        raise DataError(
            f"{len(missing)} {split} studies have no image file on disk, e.g. {first}. "
            "Check --data-root (anat_attn trains on the frontal images)."
        )


def tokenize_reports(tokenizer, studies: Sequence[Study], max_text_tokens: int) -> list[Example]:
    """report tokens + EOS, truncated to the text positions (a truncated report keeps no EOS)."""
    eos = tokenizer.eos_token_id
    out = []
    for study in studies:
        ids = tokenizer(study.reference, add_special_tokens=False)["input_ids"] + [eos]
        out.append(Example(study.study_id, Path(study.frontal_image), tuple(ids[:max_text_tokens])))
    return out


class ReportDataset(torch.utils.data.Dataset):
    """Rows of a split: token ids plus either cached features/masks or the image to encode."""

    def __init__(self, examples: Sequence[Example], cache: FeatureCache | None, config) -> None:
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
            c = self.config
            item["pixel_values"] = load_image(
                ex.image, c.image_size, c.image_mean, c.image_std, c.image_resample, ex.study_id
            )
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
def _initial_model(recipe: TrainRecipe, train_studies: Sequence[Study], resume_from: Path | None):
    """(model, tokenizer, directory with bundled ``segmenters/`` or None, fresh tiny segmenters or None)."""
    from transformers import AutoTokenizer

    from rrg_bench.baselines.anat_attn.checkpoints import resolve_checkpoint
    from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration
    from rrg_bench.baselines.anat_attn.tiny import build_tiny_model, build_tiny_segmenters, train_tokenizer

    mechanism = dict(
        attention_mode=recipe.attention_mode,
        attention_strength=recipe.attention_strength,
        bias_rows=recipe.bias_rows,
        mask_source=recipe.mask_source,
    )
    if resume_from is not None:
        model_dir = resume_from / "model"
        model = AnatAttnForReportGeneration.from_pretrained(model_dir)
        bundled = model_dir if (model_dir / "segmenters").is_dir() else None
        return model, AutoTokenizer.from_pretrained(model_dir), bundled, None
    if recipe.init_checkpoint:
        directory = resolve_checkpoint(recipe.init_checkpoint, recipe.init_revision, require_revision=False)
        model = AnatAttnForReportGeneration.from_pretrained(directory, **mechanism)
        bundled = directory if (directory / "segmenters").is_dir() else None
        return model, AutoTokenizer.from_pretrained(directory), bundled, None
    if recipe.tiny:
        tokenizer = train_tokenizer((s.reference for s in train_studies), vocab_size=recipe.tiny_vocab_size)
        model = build_tiny_model(
            tokenizer, image_size=recipe.image_size, text_positions=recipe.tiny_text_positions, **mechanism
        )
        return model, tokenizer, None, build_tiny_segmenters() if recipe.masks in ("auto", "segmenter") else None
    from transformers import GPT2TokenizerFast

    model = AnatAttnForReportGeneration.from_components(
        recipe.vision_model,
        recipe.decoder_model,
        vision_revision=recipe.vision_revision,
        decoder_revision=recipe.decoder_revision,
        image_size=recipe.image_size,
        **mechanism,
    )
    tokenizer = GPT2TokenizerFast.from_pretrained(recipe.decoder_model, revision=recipe.decoder_revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels come from the attention mask, so EOS is still trained
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, None, None


# ------------------------------------------------------------------ the loop
def train(request: TrainRequest) -> Path:
    """Train per preset + overrides; returns the checkpoint directory to evaluate (best by validation
    loss when a validation split was used, else the final weights)."""
    from accelerate import Accelerator

    preset_name, recipe = resolve_recipe(request.preset, request.overrides)
    out = Path(request.output_dir).expanduser().resolve()
    on_gpu = request.device != "cpu" and torch.cuda.is_available()
    mixed = "bf16" if (recipe.bf16 and on_gpu and torch.cuda.is_bf16_supported()) else "no"
    accelerator = Accelerator(cpu=not on_gpu, mixed_precision=mixed)
    main = accelerator.is_main_process
    seed = request.seed

    # ---- data ----
    train_all, skipped = usable_studies(request.dataset.studies(request.train_split))
    if request.limit is not None:
        train_all = train_all[: request.limit]
    if not train_all:
        raise DataError(f"{request.dataset.name}/{request.train_split}: no study with a frontal image and a report")
    check_images_exist(train_all, request.train_split)
    val_studies: list[Study] = []
    if request.val_split and request.val_split in getattr(request.dataset, "splits", (request.val_split,)):
        val_studies, _ = usable_studies(request.dataset.studies(request.val_split))
        if recipe.val_limit is not None:
            val_studies = val_studies[: recipe.val_limit]
        check_images_exist(val_studies, request.val_split)

    identity = {
        "preset": preset_name,
        "recipe": recipe.model_dump(mode="json"),
        "dataset": request.dataset.name,
        "train_split": request.train_split,
        "val_split": request.val_split if val_studies else None,
        "n_train": len(train_all),
        "n_val": len(val_studies),
        "seed": seed,
        "num_processes": accelerator.num_processes,
    }
    resume_from = prepare_run_dir(out, identity, request.resume, accelerator)

    # ---- model, tokenizer, masks ----
    model, tokenizer, bundled, fresh_segmenters = _initial_model(recipe, train_all, resume_from)
    segmenters_to_bundle = None
    if fresh_segmenters is not None:  # tiny init: random tiny segmenters, saved where "auto" finds them
        bundled = out / "tiny_segmenters"
        if main:
            for name, segmenter in zip(("lung", "heart"), fresh_segmenters):
                segmenter.save_pretrained(bundled / "segmenters" / name)
        accelerator.wait_for_everyone()
    device = accelerator.device
    model.to(device)
    provider = None
    if model.needs_masks:
        source = mask_source_for(recipe, mask_source=model.config.mask_source, bundled_dir=bundled,
                                 device=str(device))
        if source is None:
            raise UsageError(f"attention_mode={model.config.attention_mode} needs masks; masks=none gives none")
        provider = GridMaskProvider(source, model.config.grid_size, cache_dir=out / "mask_cache")
        if source.kind == "segmenter":
            segmenters_to_bundle = source

    max_text = min(model.config.max_text_tokens, recipe.max_text_tokens or model.config.max_text_tokens)
    train_examples = tokenize_reports(tokenizer, train_all, max_text)
    val_examples = tokenize_reports(tokenizer, val_studies, max_text)

    cache_root = Path(recipe.feature_cache_dir).expanduser() if recipe.feature_cache_dir else out / "feature_cache"
    progress = request.progress and main

    def split_cache(examples: list[Example], name: str) -> FeatureCache | None:
        if not recipe.feature_cache or not examples:
            return None
        return build_feature_cache(
            model,
            [ImageItem(e.study_id, e.image) for e in examples],
            provider,
            cache_root,
            batch_size=recipe.cache_batch_size,
            dtype=recipe.cache_dtype,
            device=device,
            process_index=accelerator.process_index,
            num_processes=accelerator.num_processes,
            barrier=accelerator.wait_for_everyone,
            progress=progress,
            desc=f"encoding {name} images",
        )

    started = time.perf_counter()
    train_cache = split_cache(train_examples, request.train_split)
    val_cache = split_cache(val_examples, request.val_split or "val")
    cache_seconds = time.perf_counter() - started

    collate = Collator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    sampler = EpochSampler(len(train_examples), seed, recipe.shuffle)
    train_loader = torch.utils.data.DataLoader(
        ReportDataset(train_examples, train_cache, model.config),
        batch_size=recipe.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=recipe.num_workers,
    )
    val_loader = (
        torch.utils.data.DataLoader(
            ReportDataset(val_examples, val_cache, model.config),
            batch_size=recipe.batch_size,
            shuffle=False,
            collate_fn=collate,
            num_workers=recipe.num_workers,
        )
        if val_examples
        else None
    )

    optimizer = make_optimizer(recipe, [p for p in model.parameters() if p.requires_grad])

    def write_model(unwrapped, directory: Path) -> None:
        unwrapped.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        if segmenters_to_bundle is not None:
            segmenters_to_bundle.lung.save_pretrained(directory / "segmenters" / "lung")
            if segmenters_to_bundle.heart is not None:
                segmenters_to_bundle.heart.save_pretrained(directory / "segmenters" / "heart")

    def training_info(kind: str, state: TrainerState) -> dict[str, Any]:
        masks = provider.fingerprint() if provider is not None else None
        return {
            "kind": kind,
            "step": state.step,
            "preset": preset_name,
            "recipe": recipe.model_dump(mode="json"),
            "dataset": request.dataset.name,
            "train_split": request.train_split,
            "best_val_loss": state.best_val_loss,
            "masks": masks,
            "skipped_studies": skipped,
        }

    run_training(
        accelerator=accelerator,
        model=model,
        optimizer=optimizer,
        train_loader=train_loader,
        val_loader=val_loader,
        settings=recipe,
        out=out,
        seed=seed,
        resume_from=resume_from,
        progress=progress,
        compute_loss=lambda model_, unwrapped, batch: model_(**_model_inputs(batch, unwrapped, provider)).loss,
        write_model=write_model,
        training_info=training_info,
        info_name=TRAINING_INFO,
        start_fields={"preset": preset_name, "cache_seconds": cache_seconds},
    )
    return trained_checkpoint(out)


def _model_inputs(batch: dict[str, Any], model, provider: GridMaskProvider | None) -> dict[str, Any]:
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
