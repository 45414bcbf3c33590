"""``bench train --model am_mrg --stage 1|2``: the two AM-MRG stages on the shared training loop.

Stage 1 trains the disease classifier on the train split's images with labels from our own labeler
run on the train reports, then mines the visual memory (Grad-CAM patches of train images) into
``<checkpoint>/memories/visual.*``; it returns that checkpoint. Stage 2 (``--set stage1=DIR``)
builds the report memory from the train reports, copies the visual memory, and trains the
generator; every saved model (``best/``, ``final/``, ``checkpoints/step-*/model``) is a complete
generator checkpoint with its memories. The loop (schedules, accumulation, clipping, evaluation,
early stopping, exact resume, ``loss_log.jsonl``) is ``baselines.common.trainloop``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from rrg_bench.errors import UsageError
from rrg_bench.api.training import TrainRequest
from rrg_bench.api.types import Study
from rrg_bench.baselines.am_mrg.configuration import (MAX_REPORT_TOKENS, NEW_TOKENS, AMMRGConfig, HopfieldConfig, ImageConfig,
                                            Stage1Config, dataset_family, paper_qformer_config, paper_swin_config)
from rrg_bench.baselines.am_mrg.labels import binary_labels, label_reports
from rrg_bench.baselines.am_mrg.memory import (REPORT, VISUAL, build_report_memory, build_visual_memory, check_train_only,
                                     copy_memory, file_sha256, load_memory, memory_provenance, memory_study_ids,
                                     save_memory)
from rrg_bench.baselines.am_mrg.presets import Stage1Recipe, Stage2Recipe, resolve_recipe
from rrg_bench.baselines.common.checkpoints import state_dict_sha256
from rrg_bench.baselines.common.collate import pad_token_ids
from rrg_bench.baselines.common.feature_cache import ArrayCache, fill_cache
from rrg_bench.baselines.common.image_config import image_config_for
from rrg_bench.baselines.common.images import load_image, load_images
from rrg_bench.baselines.common.splits import study_images, training_splits
from rrg_bench.baselines.common.trainloop import (EpochSampler, TrainerState, make_optimizer, prepare_run_dir,
                                        run_training, trained_checkpoint)

TRAINING_INFO = "am_mrg_training.json"
MEMORIES = "memories"


# ------------------------------------------------------------------ data shared by both stages
_TEST_REFUSAL = "am_mrg never trains (or builds memories) on the test split; choose --train-split train"


def _accelerator(request: TrainRequest, recipe):
    from accelerate import Accelerator

    on_gpu = request.device != "cpu" and torch.cuda.is_available()
    mixed = "bf16" if (recipe.bf16 and on_gpu and torch.cuda.is_bf16_supported()) else "no"
    return Accelerator(cpu=not on_gpu, mixed_precision=mixed)


def _identity(request: TrainRequest, preset: str, recipe, train: list[Study], val: list[Study], accelerator,
              **extra: Any) -> dict[str, Any]:
    return {
        "stage": request.stage, "preset": preset, "recipe": recipe.model_dump(mode="json"),
        "dataset": request.dataset.name, "train_split": request.train_split,
        "val_split": request.val_split if val else None, "n_train": len(train), "n_val": len(val),
        "seed": request.seed, "num_processes": accelerator.num_processes, **extra,
    }


def _ids_sha256(studies: Sequence[Study]) -> str:
    return hashlib.sha256("\n".join(s.study_id for s in studies).encode()).hexdigest()


def _labels(studies: Sequence[Study], recipe, device: str) -> tuple[np.ndarray, dict[str, Any]]:
    codes, labeler = label_reports([s.reference for s in studies], recipe.labeler, device)
    return binary_labels(codes, recipe.uncertain), {**labeler, "uncertain": recipe.uncertain}


# ------------------------------------------------------------------ stage 1
class ImageLabels(torch.utils.data.Dataset):
    """One row per image: normalised pixels and the study's 14 binary labels."""

    def __init__(self, items: list[tuple[str, Path]], labels: np.ndarray, image: ImageConfig) -> None:
        self.items, self.labels, self.image = items, labels, image

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sid, path = self.items[index]
        c = self.image
        return {"pixel_values": load_image(path, c.size, c.mean, c.std, c.resample, sid),
                "labels": torch.from_numpy(self.labels[index])}


def _image_rows(studies: Sequence[Study], labels: np.ndarray, mode: str) -> tuple[list[tuple[str, Path]], np.ndarray]:
    items, rows = [], []
    for s, row in zip(studies, labels):
        for p in study_images(s, mode):
            items.append((s.study_id, p))
            rows.append(row)
    return items, np.stack(rows) if rows else np.zeros((0, labels.shape[1]), np.int64)


def _stage1_model(recipe: Stage1Recipe, resume_from: Path | None):
    from rrg_bench.baselines.am_mrg.stage1 import DiseaseClassifier
    from rrg_bench.baselines.am_mrg.tiny import tiny_stage1_config

    if resume_from is not None:
        return DiseaseClassifier.load(resume_from / "model")
    if recipe.tiny:
        return DiseaseClassifier(tiny_stage1_config(recipe.tiny_image_size, recipe.label_smoothing))
    config = Stage1Config(swin_config=paper_swin_config(), qformer_config=paper_qformer_config(1536),
                          label_smoothing=recipe.label_smoothing)
    return DiseaseClassifier.from_pretrained_swin(config, recipe.swin_model, recipe.swin_revision)


def _train_stage1(request: TrainRequest, preset: str, recipe: Stage1Recipe) -> Path:
    from rrg_bench.baselines.am_mrg.stage1 import DiseaseClassifier

    accelerator = _accelerator(request, recipe)
    out = Path(request.output_dir).expanduser().resolve()
    train_studies, val_studies, skipped = training_splits(request, recipe, _TEST_REFUSAL)
    check_train_only(train_studies, request.train_split, "stage-1 training set")
    train_labels, labeler = _labels(train_studies, recipe, "cpu")
    val_labels, _ = _labels(val_studies, recipe, "cpu") if val_studies else (np.zeros((0, 14), np.int64), None)
    identity = _identity(request, preset, recipe, train_studies, val_studies, accelerator, labeler=labeler)
    resume_from = prepare_run_dir(out, identity, request.resume, accelerator)

    torch.manual_seed(request.seed)
    model = _stage1_model(recipe, resume_from)
    model.to(accelerator.device)
    train_items, train_rows = _image_rows(train_studies, train_labels, recipe.images)
    val_items, val_rows = _image_rows(val_studies, val_labels, recipe.images)
    image = model.config.image
    sampler = EpochSampler(len(train_items), request.seed, recipe.shuffle)
    train_loader = torch.utils.data.DataLoader(ImageLabels(train_items, train_rows, image), batch_size=recipe.batch_size,
                                               sampler=sampler, num_workers=recipe.num_workers)
    val_loader = (torch.utils.data.DataLoader(ImageLabels(val_items, val_rows, image), batch_size=recipe.batch_size,
                                              shuffle=False, num_workers=recipe.num_workers) if val_items else None)
    optimizer = make_optimizer(recipe, [p for p in model.parameters() if p.requires_grad])

    def info(kind: str, state: TrainerState) -> dict[str, Any]:
        return {"kind": kind, "stage": 1, "step": state.step, "preset": preset, "recipe": recipe.model_dump(mode="json"),
                "dataset": request.dataset.name, "train_split": request.train_split, "labeler": labeler,
                "best_val_loss": state.best_val_loss, "skipped_studies": skipped, "n_images": len(train_items)}

    run_training(
        accelerator=accelerator, model=model, optimizer=optimizer, train_loader=train_loader, val_loader=val_loader,
        settings=recipe, out=out, seed=request.seed, resume_from=resume_from,
        progress=request.progress and accelerator.is_main_process,
        compute_loss=lambda m, u, b: u.loss(m(b["pixel_values"]), b["labels"]),
        write_model=lambda u, d: u.save(d), training_info=info, info_name=TRAINING_INFO,
        start_fields={"preset": preset, "stage": 1},
        eval_weight=lambda b: torch.tensor(b["labels"].shape[0]),
    )
    chosen = trained_checkpoint(out)
    if accelerator.is_main_process:
        classifier = DiseaseClassifier.load(chosen)
        settings = {"threshold": recipe.cam_threshold, "top_k": recipe.cam_top_k, "maps_num": recipe.maps_num,
                    "seed": recipe.memory_seed, "patch_grid": 14, "projection": "seeded random Linear, never trained"}
        mem_identity = {"stage1_sha256": file_sha256(chosen / "model.safetensors"), "settings": settings,
                        "images": hashlib.sha256(json.dumps([[s, str(p)] for s, p in train_items]).encode()).hexdigest(),
                        "labeler": labeler}
        memdir = chosen / MEMORIES
        if not ((memdir / f"{VISUAL}.json").is_file() and memory_provenance(memdir, VISUAL).get("identity") == mem_identity):
            started = time.perf_counter()
            patterns, rows = build_visual_memory(
                classifier, train_items, train_rows, threshold=recipe.cam_threshold, top_k=recipe.cam_top_k,
                maps_num=recipe.maps_num, seed=recipe.memory_seed, batch_size=recipe.cam_batch_size,
                device=accelerator.device)
            save_memory(memdir, VISUAL, patterns, {
                "identity": mem_identity, "dataset": request.dataset.name, "split": request.train_split,
                "labeler": labeler, "settings": settings, "rows": rows,
                "seconds": round(time.perf_counter() - started, 3)})
    accelerator.wait_for_everyone()
    return chosen


# ------------------------------------------------------------------ stage 2
@dataclass(frozen=True)
class Example:
    study_id: str
    images: tuple[Path, ...]
    token_ids: tuple[int, ...]


class ReportExamples(torch.utils.data.Dataset):
    def __init__(self, examples: list[Example], cache: ArrayCache | None, image: ImageConfig) -> None:
        self.examples, self.cache, self.image = examples, cache, image

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ex = self.examples[index]
        item: dict[str, Any] = {"input_ids": ex.token_ids}
        if self.cache is not None:
            item["image_features"] = torch.from_numpy(self.cache.row("features", index))
        else:
            c = self.image
            item["pixel_values"] = load_images(ex.images, c.size, c.mean, c.std, c.resample, [ex.study_id] * len(ex.images))
        return item


class Collator:
    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        ids, mask = pad_token_ids([it["input_ids"] for it in items], self.pad_id)
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "image_features" in items[0]:
            batch["image_features"] = torch.stack([it["image_features"] for it in items])
        else:
            batch["pixel_values"] = torch.cat([it["pixel_values"] for it in items])
            batch["image_counts"] = [int(it["pixel_values"].shape[0]) for it in items]
        return batch


def tokenize_reports(tokenizer, studies: Sequence[Study], mode: str, max_tokens: int) -> list[Example]:
    """report tokens + EOS, truncated to ``max_tokens`` (the authors' ``max_length``)."""
    out = []
    for s in studies:
        ids = tokenizer(s.reference, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append(Example(s.study_id, study_images(s, mode), tuple(ids[:max_tokens])))
    return out


def _report_encoder(recipe: Stage2Recipe):
    if recipe.report_encoder == "tiny":
        from rrg_bench.baselines.am_mrg.tiny import build_tiny_report_encoder

        return build_tiny_report_encoder(recipe.memory_seed)
    from transformers import AutoModel, AutoTokenizer

    return (AutoModel.from_pretrained(recipe.report_encoder, revision=recipe.report_encoder_revision),
            AutoTokenizer.from_pretrained(recipe.report_encoder, revision=recipe.report_encoder_revision))


def _report_memory(request: TrainRequest, recipe: Stage2Recipe, studies: list[Study], memdir: Path, device) -> None:
    """Build (or reuse, if its identity matches) ``memdir/report.*`` from the train reports."""
    check_train_only(studies, request.train_split, "report memory")
    labels, labeler = _labels(studies, recipe, "cpu")
    encoder, tokenizer = _report_encoder(recipe)
    settings = {"total": recipe.report_total, "seed": recipe.memory_seed, "max_length": recipe.report_max_length,
                "encoder": recipe.report_encoder, "encoder_revision": recipe.report_encoder_revision,
                "embedding": "CLS of the last layer"}
    identity = {"encoder_sha256": state_dict_sha256(encoder), "settings": settings, "labeler": labeler,
                "dataset": request.dataset.name, "split": request.train_split, "studies": _ids_sha256(studies)}
    if (memdir / f"{REPORT}.json").is_file() and memory_provenance(memdir, REPORT).get("identity") == identity:
        return
    patterns, rows = build_report_memory(studies, labels, encoder, tokenizer, total=recipe.report_total,
                                         seed=recipe.memory_seed, max_length=recipe.report_max_length, device=device)
    save_memory(memdir, REPORT, patterns, {"identity": identity, "dataset": request.dataset.name,
                                           "split": request.train_split, "labeler": labeler, "settings": settings,
                                           "rows": rows})


def _visual_memory(request: TrainRequest, recipe: Stage2Recipe, memdir: Path) -> None:
    if not recipe.stage1:
        raise UsageError("am_mrg stage 2 needs the stage-1 checkpoint: --set stage1=<directory printed by --stage 1>")
    source = Path(recipe.stage1).expanduser() / MEMORIES
    provenance = memory_provenance(source, VISUAL)
    if provenance.get("split") == "test":
        raise UsageError(f"am_mrg: the visual memory in {source} was built from a test split")
    if provenance.get("dataset") == request.dataset.name:
        test_ids = {s.study_id for s in request.dataset.studies("test")} if "test" in request.dataset.splits else set()
        leaked = memory_study_ids(source, VISUAL) & test_ids
        if leaked:
            raise UsageError(f"am_mrg: the visual memory in {source} holds test studies, e.g. {sorted(leaked)[:3]}")
    load_memory(source, VISUAL)  # checks the file against its recorded sha256
    if not (memdir / f"{VISUAL}.json").is_file() or memory_provenance(memdir, VISUAL)["sha256"] != provenance["sha256"]:
        copy_memory(source, memdir, VISUAL)


def _stage2_model(request: TrainRequest, recipe: Stage2Recipe, train_studies: list[Study], memdir: Path,
                  resume_from: Path | None):
    """(model, tokenizer, bundle_llm) for a fresh start or a resume."""
    from rrg_bench.baselines.am_mrg.loading import load_model
    from rrg_bench.baselines.common.llm import llm_sha256, load_llm
    from rrg_bench.baselines.am_mrg.model import AMMRG, apply_lora, torch_dtype

    if resume_from is not None:
        model, tokenizer = load_model(resume_from / "model", trainable_lora=True)
        return model, tokenizer, (resume_from / "model" / "llm").is_dir()
    visual = load_memory(memdir, VISUAL)
    report = load_memory(memdir, REPORT)
    family = dataset_family(request.dataset.name)
    min_new, max_new = NEW_TOKENS[family]
    common = dict(
        hopfield=HopfieldConfig(num_heads=recipe.hopfield_heads, hidden_size=recipe.hopfield_hidden,
                                pattern_size=recipe.hopfield_pattern, beta=recipe.hopfield_beta,
                                dropout=recipe.hopfield_dropout),
        visual_memory_dim=int(visual.shape[1]), report_memory_dim=int(report.shape[1]),
        visual_memory_sha256=file_sha256(memdir / f"{VISUAL}.safetensors"),
        report_memory_sha256=file_sha256(memdir / f"{REPORT}.safetensors"),
        llm_dtype=recipe.llm_dtype, lora=recipe.lora, images=recipe.images,
        max_report_tokens=recipe.max_report_tokens or MAX_REPORT_TOKENS[family],
        min_new_tokens=recipe.min_new_tokens if recipe.min_new_tokens is not None else min_new,
        max_new_tokens=recipe.max_new_tokens if recipe.max_new_tokens is not None else max_new,
        trained_on={"dataset": request.dataset.name, "split": request.train_split, "stage1": str(recipe.stage1)},
    )
    torch.manual_seed(request.seed)
    pretrained_vision = None
    if recipe.tiny:
        from rrg_bench.baselines.am_mrg.tiny import build_tiny_llm, tiny_qformer_config, tiny_vision_config, train_tokenizer

        tokenizer = train_tokenizer((s.reference for s in train_studies), recipe.tiny_vocab_size)
        llm = build_tiny_llm(tokenizer, request.seed)
        vision = tiny_vision_config(recipe.tiny_image_size)
        config = AMMRGConfig(vision_config=vision, qformer_config=tiny_qformer_config(vision["hidden_size"]),
                             image=ImageConfig(size=recipe.tiny_image_size), llm="llm", **common)
        bundle = True
    else:
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(recipe.llm, revision=recipe.llm_revision)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token  # labels come from the mask
        bundle = recipe.bundle_llm
        llm = load_llm(recipe.llm, recipe.llm_revision, torch_dtype(recipe.llm_dtype))
        extra = {"add_pooling_layer": False}
        try:
            pretrained_vision = AutoModel.from_pretrained(recipe.vision_model, revision=recipe.vision_revision, **extra)
        except TypeError:
            pretrained_vision = AutoModel.from_pretrained(recipe.vision_model, revision=recipe.vision_revision)
        vision = pretrained_vision.config.to_dict()
        config = AMMRGConfig(vision_config=vision, qformer_config=paper_qformer_config(1408),
                             image=image_config_for(recipe.vision_model, recipe.vision_revision, vision),
                             llm="llm" if bundle else recipe.llm, llm_revision=None if bundle else recipe.llm_revision,
                             llm_sha256="" if bundle else llm_sha256(recipe.llm), **common)
    model = AMMRG(config, llm)
    if pretrained_vision is not None:
        model.vision_encoder.load_state_dict(pretrained_vision.state_dict())
    if recipe.qformer_init:
        _load_qformer(model, recipe.qformer_init)
    if recipe.lora:
        model.llm = apply_lora(model.llm, recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_targets,
                               recipe.lora_modules_to_save)
    model.set_tokenizer(tokenizer)
    model.set_memories(visual, report)
    return model, tokenizer, bundle


def _load_qformer(model, source: str) -> None:
    """Initialise the Q-Former from a BLIP-2 checkpoint directory's ``qformer.*`` tensors."""
    from safetensors import safe_open

    files = sorted(Path(source).expanduser().glob("*.safetensors"))
    state = {}
    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            state.update({k[len("qformer."):]: fh.get_tensor(k) for k in fh.keys() if k.startswith("qformer.")})
    if not state:
        raise UsageError(f"am_mrg: qformer_init={source} holds no qformer.* tensors in *.safetensors files")
    missing, unexpected = model.qformer.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("embeddings.") for k in missing):
        raise UsageError(f"am_mrg: qformer_init={source} does not fit the Q-Former (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")


def _feature_cache(model, examples: list[Example], recipe: Stage2Recipe, cache_root: Path, accelerator, name: str
                   ) -> ArrayCache | None:
    """Averaged encoder tokens per study (frozen encoder only), cached with the shared feature cache."""
    if not recipe.freeze_vision or not examples:
        return None
    c = model.config
    h = hashlib.sha256()
    for ex in examples:
        for p in ex.images:
            st = p.stat()
            h.update(f"{ex.study_id}\0{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    identity = {"format": 1, "model": "am_mrg", "vision_sha256": state_dict_sha256(model.vision_encoder),
                "image": c.image.model_dump(mode="json"), "images": c.images, "dtype": recipe.cache_dtype,
                "items_sha256": h.hexdigest(), "n": len(examples)}
    device = accelerator.device

    @torch.no_grad()
    def compute(rows: Sequence[int]) -> dict[str, np.ndarray]:
        paths = [p for i in rows for p in examples[i].images]
        ids = [examples[i].study_id for i in rows for _ in examples[i].images]
        pixels = load_images(paths, c.image.size, c.image.mean, c.image.std, c.image.resample, ids)
        counts = [len(examples[i].images) for i in rows]
        return {"features": model.encode_images(pixels.to(device), counts).float().cpu().numpy()}

    width = int(model.vision_encoder.config.hidden_size)
    directory = fill_cache(identity, cache_root, len(examples), {"features": ((c.num_vision_tokens(), width), recipe.cache_dtype)},
                           compute, batch_size=recipe.cache_batch_size, process_index=accelerator.process_index,
                           num_processes=accelerator.num_processes, barrier=accelerator.wait_for_everyone,
                           progress=False, desc=f"encoding {name} images")
    return ArrayCache(directory, ["features"])


def _train_stage2(request: TrainRequest, preset: str, recipe: Stage2Recipe) -> Path:
    accelerator = _accelerator(request, recipe)
    out = Path(request.output_dir).expanduser().resolve()
    train_studies, val_studies, skipped = training_splits(request, recipe, _TEST_REFUSAL)
    identity = _identity(request, preset, recipe, train_studies, val_studies, accelerator)
    resume_from = prepare_run_dir(out, identity, request.resume, accelerator)
    memdir = out / MEMORIES
    if accelerator.is_main_process and resume_from is None:
        _visual_memory(request, recipe, memdir)
        _report_memory(request, recipe, train_studies, memdir, accelerator.device)
    accelerator.wait_for_everyone()

    model, tokenizer, bundle = _stage2_model(request, recipe, train_studies, memdir, resume_from)
    if recipe.freeze_vision:
        model.vision_encoder.requires_grad_(False)
        model.vision_frozen = True
    model.to(accelerator.device)
    max_tokens = model.config.max_report_tokens
    train_examples = tokenize_reports(tokenizer, train_studies, recipe.images, max_tokens)
    val_examples = tokenize_reports(tokenizer, val_studies, recipe.images, max_tokens)
    cache_root = Path(recipe.feature_cache_dir).expanduser() if recipe.feature_cache_dir else out / "feature_cache"
    started = time.perf_counter()
    train_cache = _feature_cache(model, train_examples, recipe, cache_root, accelerator, request.train_split)
    val_cache = _feature_cache(model, val_examples, recipe, cache_root, accelerator, request.val_split or "val")
    cache_seconds = time.perf_counter() - started

    collate = Collator(model.pad_id)
    image = model.config.image
    train_loader = torch.utils.data.DataLoader(ReportExamples(train_examples, train_cache, image),
                                               batch_size=recipe.batch_size, collate_fn=collate,
                                               sampler=EpochSampler(len(train_examples), request.seed, recipe.shuffle),
                                               num_workers=recipe.num_workers)
    val_loader = (torch.utils.data.DataLoader(ReportExamples(val_examples, val_cache, image), batch_size=recipe.batch_size,
                                              shuffle=False, collate_fn=collate, num_workers=recipe.num_workers)
                  if val_examples else None)
    optimizer = make_optimizer(recipe, [p for p in model.parameters() if p.requires_grad])

    def write_model(unwrapped, directory: Path) -> None:
        unwrapped.save(directory, tokenizer, bundle_llm=bundle)
        for name in (VISUAL, REPORT):
            copy_memory(memdir, directory / MEMORIES, name)

    def info(kind: str, state: TrainerState) -> dict[str, Any]:
        return {"kind": kind, "stage": 2, "step": state.step, "preset": preset, "recipe": recipe.model_dump(mode="json"),
                "dataset": request.dataset.name, "train_split": request.train_split,
                "best_val_loss": state.best_val_loss, "skipped_studies": skipped}

    def compute_loss(m, unwrapped, batch: dict[str, Any]) -> torch.Tensor:
        keys = ("input_ids", "attention_mask", "image_features", "pixel_values", "image_counts")
        return m(**{k: batch[k] for k in keys if k in batch})

    run_training(
        accelerator=accelerator, model=model, optimizer=optimizer, train_loader=train_loader, val_loader=val_loader,
        settings=recipe, out=out, seed=request.seed, resume_from=resume_from,
        progress=request.progress and accelerator.is_main_process, compute_loss=compute_loss,
        write_model=write_model, training_info=info, info_name=TRAINING_INFO,
        start_fields={"preset": preset, "stage": 2, "cache_seconds": cache_seconds},
    )
    return trained_checkpoint(out)


def train(request: TrainRequest) -> Path:
    """Train the stage named by ``request.stage``; returns the checkpoint directory (stage 1: with its
    visual memory, for ``--set stage1=``; stage 2: a generator checkpoint for ``bench run``)."""
    preset, recipe = resolve_recipe(request.stage, request.preset, request.overrides, request.dataset.name)
    if request.stage == 1:
        return _train_stage1(request, preset, recipe)
    return _train_stage2(request, preset, recipe)
