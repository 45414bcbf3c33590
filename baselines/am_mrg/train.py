"""``bench train --model am_mrg --stage 1|2``: the two AM-MRG stages on the shared training loop.

Stage 1 trains the disease classifier on the train split's images with labels from our own labeler
run on the train reports, then mines the visual memory (Grad-CAM patches of train images) into
``<checkpoint>/memories/visual.*``; it returns that checkpoint. Stage 2 (``--set stage1=DIR``)
builds the report memory from the train reports, copies the visual memory, and trains the
generator; every saved model (``best/``, ``final/``, ``checkpoints/step-*/model``) is a complete
generator checkpoint with its memories. The loop (schedules, accumulation, clipping, evaluation,
early stopping, exact resume, ``loss_log.jsonl``) is ``baselines.common.trainloop``; under the
``paper_*`` presets stage 2 starts from ARM-L (``MambaXrayCLIP-L.pth``) and the BLIP-2 Q-Former, trains
on R2Gen-cleaned text, anneals per epoch and keeps the checkpoint with the best validation BLEU-4
(``validation.py``), as the authors' AM_MRG.py does.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rrg_bench.api.training import TrainRequest
from rrg_bench.api.types import Study
from rrg_bench.baselines.am_mrg.configuration import (
    AMMRGConfig,
    HopfieldConfig,
    Stage1Config,
    paper_qformer_config,
    paper_swin_config,
)
from rrg_bench.baselines.am_mrg.labels import binary_labels, label_reports
from rrg_bench.baselines.am_mrg.memory import (
    REPORT,
    VISUAL,
    build_report_memory,
    build_visual_memory,
    check_train_only,
    copy_memory,
    load_memory,
    memory_provenance,
    memory_study_ids,
    save_memory,
)
from rrg_bench.baselines.am_mrg.presets import Stage1Recipe, Stage2Recipe, resolve_recipe
from rrg_bench.baselines.am_mrg.validation import BleuSelection, generation_options, report_cleaner
from rrg_bench.baselines.common.checkpoints import state_dict_sha256
from rrg_bench.baselines.common.collate import pad_token_ids
from rrg_bench.baselines.common.feature_cache import ArrayCache, fill_cache, images_sha256
from rrg_bench.baselines.common.generation import report_lengths
from rrg_bench.baselines.common.images import pixel_batch, pixel_values
from rrg_bench.baselines.common.session import TrainingSession
from rrg_bench.baselines.common.splits import study_images
from rrg_bench.baselines.common.trainloop import ModelIO, forward_loss
from rrg_bench.baselines.common.vision import ImageConfig
from rrg_bench.errors import UsageError
from rrg_bench.hashing import sha256_file as file_sha256

TRAINING_INFO = "am_mrg_training.json"
MEMORIES = "memories"


def _labels(studies: Sequence[Study], recipe: Stage1Recipe | Stage2Recipe) -> tuple[np.ndarray, dict[str, Any]]:
    codes, labeler = label_reports([s.reference for s in studies], recipe.labeler, "cpu")
    return binary_labels(codes, recipe.uncertain), {**labeler, "uncertain": recipe.uncertain}


def _ids_sha256(studies: Sequence[Study]) -> str:
    return hashlib.sha256("\n".join(s.study_id for s in studies).encode()).hexdigest()


# ------------------------------------------------------------------ stage 1
class ImageLabels(torch.utils.data.Dataset):
    """One row per image: normalised pixels and the study's 14 binary labels."""

    def __init__(self, items: list[tuple[str, Path]], labels: np.ndarray, image: ImageConfig) -> None:
        self.items, self.labels, self.image = items, labels, image

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sid, path = self.items[index]
        return {"pixel_values": pixel_values(path, self.image, sid), "labels": torch.from_numpy(self.labels[index])}


def _image_rows(studies: Sequence[Study], labels: np.ndarray, mode: str) -> tuple[list[tuple[str, Path]], np.ndarray]:
    items, rows = [], []
    for s, row in zip(studies, labels):
        for p in study_images(s, mode):
            items.append((s.study_id, p))
            rows.append(row)
    return items, np.stack(rows) if rows else np.zeros((0, labels.shape[1]), np.int64)


def _stage1_model(recipe: Stage1Recipe, resume_from: Path | None) -> Any:
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
    session = TrainingSession.open(request, preset, recipe, model="am_mrg", images=recipe.images)
    train_studies, val_studies = session.splits.train, session.splits.val
    check_train_only(train_studies, request.train_split, "stage-1 training set")
    train_labels, labeler = _labels(train_studies, recipe)
    val_labels, _ = _labels(val_studies, recipe) if val_studies else (np.zeros((0, 14), np.int64), None)
    resume_from = session.prepare(stage=request.stage, labeler=labeler)

    torch.manual_seed(request.seed)
    model = _stage1_model(recipe, resume_from)
    model.to(session.accelerator.device)
    train_items, train_rows = _image_rows(train_studies, train_labels, recipe.images)
    val_items, val_rows = _image_rows(val_studies, val_labels, recipe.images)
    image = model.config.image
    loaders = session.loaders(ImageLabels(train_items, train_rows, image), ImageLabels(val_items, val_rows, image))
    io = ModelIO(compute_loss=lambda m, u, b: u.loss(m(b["pixel_values"]), b["labels"]),
                 write_model=lambda u, d: u.save(d), info_name=TRAINING_INFO,
                 training_info=lambda kind, state: session.info(kind, state, stage=1, labeler=labeler,
                                                                n_images=len(train_items)),
                 eval_weight=lambda b: torch.tensor(b["labels"].shape[0]))
    chosen = session.fit(model, loaders, io, start_fields={"preset": preset, "stage": 1})
    if recipe.checkpoint == "final":  # the authors mine with their fixed last (epoch-25) checkpoint
        chosen = session.out / "final"
    if session.main:
        _mine_visual_memory(request, recipe, chosen, train_items, train_rows, labeler, session.accelerator.device)
    session.accelerator.wait_for_everyone()
    return chosen


def _mine_visual_memory(request: TrainRequest, recipe: Stage1Recipe, chosen: Path, train_items: list[tuple[str, Path]],
                        train_rows: np.ndarray, labeler: dict[str, Any], device: Any) -> None:
    """Grad-CAM patches of the train images into ``<chosen>/memories/visual.*`` (reused while its
    identity — classifier, settings, images, labeler — is unchanged)."""
    from rrg_bench.baselines.am_mrg.stage1 import DiseaseClassifier

    classifier = DiseaseClassifier.load(chosen)
    settings = {"threshold": recipe.cam_threshold, "top_k": recipe.cam_top_k, "maps_num": recipe.maps_num,
                "seed": recipe.memory_seed, "patch_grid": 14, "projection": "seeded random Linear, never trained"}
    mem_identity = {"stage1_sha256": file_sha256(chosen / "model.safetensors"), "settings": settings,
                    "images": hashlib.sha256(json.dumps([[s, str(p)] for s, p in train_items]).encode()).hexdigest(),
                    "labeler": labeler}
    memdir = chosen / MEMORIES
    if (memdir / f"{VISUAL}.json").is_file() and memory_provenance(memdir, VISUAL).get("identity") == mem_identity:
        return
    started = time.perf_counter()
    patterns, rows = build_visual_memory(
        classifier, train_items, train_rows, threshold=recipe.cam_threshold, top_k=recipe.cam_top_k,
        maps_num=recipe.maps_num, seed=recipe.memory_seed, batch_size=recipe.cam_batch_size, device=device)
    save_memory(memdir, VISUAL, patterns, {
        "identity": mem_identity, "dataset": request.dataset.name, "split": request.train_split,
        "labeler": labeler, "settings": settings, "rows": rows,
        "seconds": round(time.perf_counter() - started, 3)})


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
            item["pixel_values"] = pixel_batch(ex.images, self.image, [ex.study_id] * len(ex.images))
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


def tokenize_reports(tokenizer: Any, studies: Sequence[Study], mode: str, max_tokens: int,
                     clean: Callable[[str], str] = str) -> list[Example]:
    """``clean(report)`` tokens + EOS, truncated to ``max_tokens`` (the authors' ``max_length``)."""
    out = []
    for s in studies:
        ids = tokenizer(clean(s.reference), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append(Example(s.study_id, study_images(s, mode), tuple(ids[:max_tokens])))
    return out


def _report_encoder(recipe: Stage2Recipe) -> tuple[Any, Any]:
    if recipe.report_encoder == "tiny":
        from rrg_bench.baselines.am_mrg.tiny import build_tiny_report_encoder

        return build_tiny_report_encoder(recipe.memory_seed)
    from transformers import AutoModel, AutoTokenizer

    return (AutoModel.from_pretrained(recipe.report_encoder, revision=recipe.report_encoder_revision),
            AutoTokenizer.from_pretrained(recipe.report_encoder, revision=recipe.report_encoder_revision))


def _report_memory(request: TrainRequest, recipe: Stage2Recipe, studies: list[Study], memdir: Path, device: Any
                   ) -> None:
    """Build (or reuse, if its identity matches) ``memdir/report.*`` from the train reports."""
    check_train_only(studies, request.train_split, "report memory")
    labels, labeler = _labels(studies, recipe)
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
                  resume_from: Path | None) -> tuple[Any, Any, bool]:
    """(model, tokenizer, bundle_llm) for a fresh start or a resume."""
    from rrg_bench.baselines.am_mrg.loading import load_model
    from rrg_bench.baselines.am_mrg.model import AMMRG
    from rrg_bench.baselines.common.mllm import apply_recipe_lora, recipe_llm

    if resume_from is not None:
        model, tokenizer = load_model(resume_from / "model", trainable_lora=True)
        return model, tokenizer, (resume_from / "model" / "llm").is_dir()
    visual = load_memory(memdir, VISUAL)
    report = load_memory(memdir, REPORT)
    fields = dict(
        hopfield=HopfieldConfig(num_heads=recipe.hopfield_heads, hidden_size=recipe.hopfield_hidden,
                                pattern_size=recipe.hopfield_pattern, beta=recipe.hopfield_beta,
                                dropout=recipe.hopfield_dropout),
        visual_memory_dim=int(visual.shape[1]), report_memory_dim=int(report.shape[1]),
        visual_memory_sha256=file_sha256(memdir / f"{VISUAL}.safetensors"),
        report_memory_sha256=file_sha256(memdir / f"{REPORT}.safetensors"),
        llm_dtype=recipe.llm_dtype, lora=recipe.lora, images=recipe.images,
        **report_lengths(request.dataset.name, recipe),
        trained_on={"dataset": request.dataset.name, "split": request.train_split, "stage1": str(recipe.stage1),
                    "report_text": recipe.report_text, "select_by": recipe.select_by},
    )
    torch.manual_seed(request.seed)

    def tiny_tokenizer() -> Any:
        from rrg_bench.baselines.am_mrg.tiny import train_tokenizer

        return train_tokenizer((s.reference for s in train_studies), recipe.tiny_vocab_size)

    llm, tokenizer, llm_fields, bundle = recipe_llm(recipe, model="am_mrg", seed=request.seed,
                                                    tiny_tokenizer=tiny_tokenizer)
    config, vision_source = _stage2_vision(recipe, {**fields, **llm_fields})
    model = AMMRG(config, llm)
    _initialise(model, recipe, vision_source)
    apply_recipe_lora(model, recipe)
    model.set_tokenizer(tokenizer)
    model.set_memories(visual, report)
    return model, tokenizer, bundle


def _stage2_vision(recipe: Stage2Recipe, fields: dict[str, Any]) -> tuple[AMMRGConfig, Any]:
    """(the stage-2 config, where the encoder's weights come from: a ``transformers`` model to copy, the
    ARM weights to load, or None for a random tiny encoder)."""
    from rrg_bench.baselines.am_mrg.tiny import tiny_qformer_config, tiny_vision_config

    tiny = recipe.tiny or recipe.vision_model == "tiny"
    if recipe.encoder == "arm":
        from rrg_bench.baselines.am_mrg.encoders import arm_large_config, tiny_arm_config

        vision = tiny_arm_config(recipe.tiny_image_size) if tiny else arm_large_config()
        qformer = tiny_qformer_config(vision["hidden_size"]) if tiny else paper_qformer_config(1408)
        # the authors' images go through a Swin-base processor: 224 px, ImageNet mean/std (ImageConfig's default)
        image = ImageConfig(size=vision["image_size"])
        return AMMRGConfig(vision_config=vision, qformer_config=qformer, image=image, **fields), \
            (None if tiny else recipe.vision_model)
    if tiny:
        vision = tiny_vision_config(recipe.tiny_image_size)
        return AMMRGConfig(vision_config=vision, qformer_config=tiny_qformer_config(vision["hidden_size"]),
                           image=ImageConfig(size=recipe.tiny_image_size), **fields), None
    from transformers import AutoModel

    from rrg_bench.baselines.common.vision import image_config_for

    try:
        pretrained = AutoModel.from_pretrained(recipe.vision_model, revision=recipe.vision_revision,
                                               add_pooling_layer=False)
    except TypeError:
        pretrained = AutoModel.from_pretrained(recipe.vision_model, revision=recipe.vision_revision)
    vision = pretrained.config.to_dict()
    config = AMMRGConfig(vision_config=vision, qformer_config=paper_qformer_config(1408),
                         image=image_config_for(recipe.vision_model, recipe.vision_revision, vision), **fields)
    return config, pretrained


def _initialise(model: Any, recipe: Stage2Recipe, source: Any) -> None:
    """Starting weights of the encoder (ARM file or a ``transformers`` model) and the Q-Former (BLIP-2),
    recorded in the config's ``trained_on``."""
    from rrg_bench.baselines.am_mrg.qformer import load_qformer_init

    init: dict[str, Any] = {"vision": "random" if source is None else recipe.vision_model}
    if isinstance(source, str):
        from rrg_bench.baselines.am_mrg.encoders import load_arm_weights

        init["vision"] = load_arm_weights(model.vision_encoder, source)
    elif source is not None:
        model.vision_encoder.load_state_dict(source.state_dict())
    init["qformer"] = load_qformer_init(model.qformer, recipe.qformer_init) if recipe.qformer_init else "random"
    model.config.trained_on["init"] = init


def _feature_cache(model: Any, examples: list[Example], recipe: Stage2Recipe, cache_root: Path, accelerator: Any,
                   name: str) -> ArrayCache | None:
    """Averaged encoder tokens per study (frozen encoder only), cached with the shared feature cache."""
    if not recipe.freeze_vision or not examples:
        return None
    c = model.config
    identity = {"format": 1, "model": "am_mrg", "vision_sha256": state_dict_sha256(model.vision_encoder),
                "image": c.image.model_dump(mode="json"), "images": c.images, "dtype": recipe.cache_dtype,
                "items_sha256": images_sha256((ex.study_id, p) for ex in examples for p in ex.images),
                "n": len(examples)}
    device = accelerator.device

    @torch.no_grad()
    def compute(rows: Sequence[int]) -> dict[str, np.ndarray]:
        paths = [p for i in rows for p in examples[i].images]
        ids = [examples[i].study_id for i in rows for _ in examples[i].images]
        counts = [len(examples[i].images) for i in rows]
        features = model.encode_images(pixel_batch(paths, c.image, ids).to(device), counts)
        return {"features": features.float().cpu().numpy()}

    width = int(model.vision_encoder.config.hidden_size)
    arrays = {"features": ((c.num_vision_tokens(), width), recipe.cache_dtype)}
    directory = fill_cache(identity, cache_root, len(examples), arrays, compute, batch_size=recipe.cache_batch_size,
                           process_index=accelerator.process_index, num_processes=accelerator.num_processes,
                           barrier=accelerator.wait_for_everyone, progress=False, desc=f"encoding {name} images")
    return ArrayCache(directory, ["features"])


def _train_stage2(request: TrainRequest, preset: str, recipe: Stage2Recipe) -> Path:
    session = TrainingSession.open(request, preset, recipe, model="am_mrg", images=recipe.images)
    accelerator, train_studies = session.accelerator, session.splits.train
    resume_from = session.prepare(stage=request.stage)
    memdir = session.out / MEMORIES
    if session.main and resume_from is None:
        _visual_memory(request, recipe, memdir)
        _report_memory(request, recipe, train_studies, memdir, accelerator.device)
    accelerator.wait_for_everyone()

    model, tokenizer, bundle = _stage2_model(request, recipe, train_studies, memdir, resume_from)
    if recipe.freeze_vision:
        model.vision_encoder.requires_grad_(False)
        model.vision_frozen = True
    model.to(accelerator.device)
    max_tokens = model.config.max_report_tokens
    clean = report_cleaner(request.dataset.name, recipe.report_text)
    train_examples = tokenize_reports(tokenizer, train_studies, recipe.images, max_tokens, clean)
    val_examples = tokenize_reports(tokenizer, session.splits.val, recipe.images, max_tokens, clean)
    cache_root = session.cache_root(recipe.feature_cache_dir)
    started = time.perf_counter()
    train_cache = _feature_cache(model, train_examples, recipe, cache_root, accelerator, request.train_split)
    val_cache = _feature_cache(model, val_examples, recipe, cache_root, accelerator, request.val_split or "val")
    cache_seconds = time.perf_counter() - started

    image = model.config.image
    loaders = session.loaders(ReportExamples(train_examples, train_cache, image),
                              ReportExamples(val_examples, val_cache, image), Collator(model.pad_id))

    def write_model(unwrapped: Any, directory: Path) -> None:
        unwrapped.save(directory, tokenizer, bundle_llm=bundle)
        for name in (VISUAL, REPORT):
            copy_memory(memdir, directory / MEMORIES, name)

    score = (BleuSelection(tokenizer, generation_options(model.config), accelerator)
             if recipe.select_by == "val_bleu4" else None)
    io = ModelIO(compute_loss=forward_loss(("input_ids", "attention_mask", "image_features", "pixel_values",
                                            "image_counts")),
                 write_model=write_model, info_name=TRAINING_INFO, score=score,
                 training_info=lambda kind, state: session.info(kind, state, stage=2, best_val_bleu4=state.best_score))
    return session.fit(model, loaders, io, start_fields={"preset": preset, "stage": 2, "cache_seconds": cache_seconds})


def train(request: TrainRequest) -> Path:
    """Train the stage named by ``request.stage``; returns the checkpoint directory (stage 1: with its
    visual memory, for ``--set stage1=``; stage 2: a generator checkpoint for ``bench run``)."""
    preset, recipe = resolve_recipe(request.stage, request.preset, request.overrides, request.dataset.name)
    if isinstance(recipe, Stage1Recipe):  # resolve_recipe returns the recipe of request.stage
        return _train_stage1(request, preset, recipe)
    return _train_stage2(request, preset, recipe)
