"""``bench train --model anat_attn``: the LAnA training loop (single process or ``accelerate launch``).

Output directory::

    recipe.json                 resolved preset + overrides + data identity (a resume must match it)
    loss_log.jsonl              one line per optimizer step, evaluation and epoch
    checkpoints/step-XXXXXXXX/  model/ (save_pretrained + tokenizer), accelerate/ (optimizer,
                                scheduler, RNG), trainer_state.json — written atomically
    best/                       best validation loss (save_pretrained + tokenizer [+ segmenters/])
    final/                      weights at the end of training
    feature_cache/              encoder features + grid masks (unless feature_cache_dir is set)

Resume is exact: batches come from a per-epoch permutation seeded by (seed, epoch), dropout is
re-seeded from (seed, epoch, batch, rank) before every micro-batch, and optimizer / scheduler /
trainer state are restored — so a run resumed from a mid-way checkpoint ends with the same weights
as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from bench.errors import DataError, UsageError
from bench.training import TrainRequest
from bench.types import Study
from baselines.anat_attn.features import FeatureCache, ImageItem, build_feature_cache
from baselines.anat_attn.images import load_image
from baselines.anat_attn.masks import GridMaskProvider, build_mask_source
from baselines.anat_attn.presets import TrainRecipe, resolve_recipe

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


class EpochSampler(torch.utils.data.Sampler[int]):
    """A fixed permutation per epoch, seeded by (seed, epoch): resumable without sampler state."""

    def __init__(self, n: int, seed: int, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(_derive_seed(self.seed, "epoch", self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


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
        longest = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), longest), self.pad_id, dtype=torch.long)
        attn = torch.zeros((len(items), longest), dtype=torch.long)
        for row, it in enumerate(items):
            n = len(it["input_ids"])
            ids[row, :n] = torch.tensor(it["input_ids"], dtype=torch.long)
            attn[row, :n] = 1
        # labels from the attention mask, not from the pad id: EOS is a target even if pad == eos
        labels = ids.masked_fill(attn == 0, IGNORE_INDEX)
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": attn, "labels": labels}
        for key in ("image_features", "grid_masks", "pixel_values"):
            if key in items[0]:
                batch[key] = torch.stack([it[key] for it in items])
        batch["image_paths"] = [it["image_path"] for it in items]
        return batch


# ------------------------------------------------------------------ state
@dataclass
class TrainerState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_eval_step: int | None = None
    stopped_early: bool = False
    finished: bool = False


def _derive_seed(*parts: Any) -> int:
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith("step-") and (p / "trainer_state.json").is_file())


class LossLog:
    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.is_file()):
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, **record: Any) -> None:
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")


# ------------------------------------------------------------------ model setup
def _initial_model(recipe: TrainRecipe, train_studies: Sequence[Study], resume_from: Path | None):
    """(model, tokenizer, directory with bundled ``segmenters/`` or None, fresh tiny segmenters or None)."""
    from transformers import AutoTokenizer

    from baselines.anat_attn.checkpoints import resolve_checkpoint
    from baselines.anat_attn.model import AnatAttnForReportGeneration
    from baselines.anat_attn.tiny import build_tiny_model, build_tiny_segmenters, train_tokenizer

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


def _make_optimizer(recipe: TrainRecipe, params) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(recipe.adam_beta1, recipe.adam_beta2))


def _make_scheduler(recipe: TrainRecipe, optimizer, total_steps: int):
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    warmup = int(round(recipe.warmup_ratio * total_steps))
    if recipe.schedule == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    return get_constant_schedule_with_warmup(optimizer, warmup)


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
    checkpoints = _checkpoints(out)
    resume_from = checkpoints[-1] if (request.resume and checkpoints) else None
    recipe_file = out / "recipe.json"
    if checkpoints and not request.resume:
        raise UsageError(f"{out} already holds checkpoints of a run; resume it or choose a new --output")
    if resume_from is not None and recipe_file.is_file():
        previous = json.loads(recipe_file.read_text())
        if previous != identity:
            diff = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
            raise UsageError(f"cannot resume {out}: the run differs from the checkpointed one in {diff}")
    accelerator.wait_for_everyone()  # every rank has compared before the main process rewrites the file
    if main:
        out.mkdir(parents=True, exist_ok=True)
        recipe_file.write_text(json.dumps(identity, indent=1, sort_keys=True))
        if resume_from is None:  # a fresh start: no log lines from an earlier, checkpoint-less attempt
            (out / "loss_log.jsonl").unlink(missing_ok=True)

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
        source = build_mask_source(
            "segmenter" if recipe.masks == "auto" else recipe.masks,
            mask_source=model.config.mask_source,
            mask_dir=recipe.mask_dir,
            mask_image_root=recipe.mask_image_root,
            chexmask_csv=recipe.chexmask_csv,
            chexmask_id_column=recipe.chexmask_id_column,
            lung_segmenter=recipe.lung_segmenter,
            heart_segmenter=recipe.heart_segmenter,
            segmenter_revision=recipe.segmenter_revision,
            bundled_dir=bundled,
            device=str(device),
        )
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

    optimizer = _make_optimizer(recipe, [p for p in model.parameters() if p.requires_grad])
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    cap = recipe.max_batches_per_epoch
    per_process_cap = math.ceil(cap / accelerator.num_processes) if cap else None
    batches_per_epoch = min(len(train_loader), per_process_cap) if per_process_cap else len(train_loader)
    steps_per_epoch = math.ceil(batches_per_epoch / recipe.grad_accum)
    total_steps = steps_per_epoch * recipe.epochs
    if recipe.max_steps is not None:
        total_steps = min(total_steps, recipe.max_steps)
    scheduler = _make_scheduler(recipe, optimizer, total_steps)
    accelerator.register_for_checkpointing(scheduler)

    state = TrainerState()
    log = LossLog(out / "loss_log.jsonl", main)
    if resume_from is not None:
        accelerator.load_state(str(resume_from / "accelerate"))
        state = TrainerState(**json.loads((resume_from / "trainer_state.json").read_text()))
        log.truncate_after(state.step)
        log.write(event="resume", step=state.step, checkpoint=resume_from.name)
    else:
        log.write(event="start", step=0, preset=preset_name, total_steps=total_steps, cache_seconds=cache_seconds)

    unwrapped = accelerator.unwrap_model(model)

    def evaluate() -> float | None:
        if val_loader is None:
            return None
        model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for batch in val_loader:
                out_ = model(**_model_inputs(batch, unwrapped, provider))
                tokens = batch["attention_mask"].sum()
                total += torch.stack([out_.loss.double() * tokens, tokens.double()])
        total = accelerator.reduce(total, reduction="sum")
        model.train()
        return float(total[0] / total[1].clamp_min(1))

    def save_model(directory: Path, info: dict[str, Any]) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        unwrapped.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if segmenters_to_bundle is not None:
            segmenters_to_bundle.lung.save_pretrained(tmp / "segmenters" / "lung")
            if segmenters_to_bundle.heart is not None:
                segmenters_to_bundle.heart.save_pretrained(tmp / "segmenters" / "heart")
        (tmp / TRAINING_INFO).write_text(json.dumps(info, indent=1, sort_keys=True))
        if directory.exists():
            shutil.rmtree(directory)
        tmp.replace(directory)

    def training_info(kind: str) -> dict[str, Any]:
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

    def save_checkpoint() -> None:
        accelerator.wait_for_everyone()
        final = out / "checkpoints" / f"step-{state.step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        if main and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp / "accelerate"))
        if main:
            save_model(tmp / "model", training_info("checkpoint"))
            (tmp / "trainer_state.json").write_text(json.dumps(asdict(state), indent=1))
            if final.exists():
                shutil.rmtree(final)
            tmp.replace(final)
            for old in _checkpoints(out)[: -recipe.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def after_eval(val_loss: float | None) -> None:
        if val_loss is None:
            return
        improved = state.best_val_loss is None or val_loss < state.best_val_loss - recipe.min_delta
        if improved:
            state.best_val_loss, state.best_step, state.bad_evals = val_loss, state.step, 0
            if main:
                save_model(out / "best", training_info("best"))
        else:
            state.bad_evals += 1
            if recipe.patience is not None and state.bad_evals >= recipe.patience:
                state.stopped_early = True
        state.last_eval_step = state.step
        log.write(event="eval", step=state.step, val_loss=val_loss, best_val_loss=state.best_val_loss)

    model.train()
    rank = accelerator.process_index
    while not (state.finished or state.stopped_early) and state.epoch < recipe.epochs and state.step < total_steps:
        epoch = state.epoch
        epoch_started = time.perf_counter()
        train_loader.set_epoch(epoch)
        start = state.batch_in_epoch
        loader = accelerator.skip_first_batches(train_loader, start) if start else train_loader
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=batches_per_epoch, initial=start, desc=f"epoch {epoch + 1}/{recipe.epochs}", unit="batch")
        running, micro_losses = 0.0, []
        for index, batch in enumerate(loader, start=start):
            if index >= batches_per_epoch:
                break
            group_start = index - index % recipe.grad_accum
            group_size = min(recipe.grad_accum, batches_per_epoch - group_start)
            last_micro = index == group_start + group_size - 1
            torch.manual_seed(_derive_seed(seed, "dropout", epoch, index, rank))
            with nullcontext() if last_micro else accelerator.no_sync(model):
                loss = model(**_model_inputs(batch, unwrapped, provider)).loss
                accelerator.backward(loss / group_size)
            micro_losses.append(loss.detach())
            if bar is not None:
                bar.update(1)
            if not last_micro:
                continue
            if recipe.grad_clip is not None:
                accelerator.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_loss = accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean").item()
            micro_losses = []
            state.step += 1
            state.batch_in_epoch = index + 1
            running = step_loss
            log.write(event="step", step=state.step, epoch=epoch, loss=step_loss, lr=scheduler.get_last_lr()[0])
            if bar is not None:
                bar.set_postfix(loss=f"{running:.3f}", step=state.step)
            if recipe.eval_every_steps and state.step % recipe.eval_every_steps == 0:
                after_eval(evaluate())
            at_end = state.step >= total_steps or state.stopped_early
            if recipe.save_every_steps and state.step % recipe.save_every_steps == 0 and not at_end:
                save_checkpoint()
            if at_end:
                break
        if bar is not None:
            bar.close()
        epoch_done = state.batch_in_epoch >= batches_per_epoch
        if epoch_done:
            state.epoch, state.batch_in_epoch = epoch + 1, 0
        log.write(
            event="epoch", step=state.step, epoch=epoch, seconds=time.perf_counter() - epoch_started,
            complete=epoch_done,
        )
        if epoch_done and not recipe.eval_every_steps:
            after_eval(evaluate())
        if state.step >= total_steps or state.epoch >= recipe.epochs:
            state.finished = True
        if epoch_done and not recipe.save_every_steps and not (state.finished or state.stopped_early):
            save_checkpoint()

    state.finished = True
    if val_loader is not None and state.last_eval_step != state.step:
        after_eval(evaluate())
    save_checkpoint()
    if main:
        save_model(out / "final", training_info("final"))
        log.write(event="end", step=state.step, best_val_loss=state.best_val_loss, stopped_early=state.stopped_early)
    accelerator.wait_for_everyone()
    return out / "best" if (out / "best").is_dir() else out / "final"


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
