"""``bench train --model s2d_align --stage 1|2|3``: the shallow-to-deep curriculum on the shared loop.

Stage 1 builds the MLLM (vision encoder -> projector -> memory adapter -> LLM) and trains
image-report pairing. Stage 2 (``--set init=<stage-1 checkpoint>``) loads *all* of stage 1's
weights — the memory bank included, never re-drawn — and adds the top-k reference reports retrieved
from the train split by knn_image's index to every prompt. Stage 3 (``--set init=<stage-2
checkpoint>``) adds each study's own key phrases as an auxiliary target (phrases-then-report, or a
multi-label head). Each stage's ``best/`` / ``final/`` is a complete generator checkpoint; the loop
(schedules, accumulation, evaluation, exact resume, ``loss_log.jsonl``) is
``baselines.common.trainloop``; ``s2d_align_training.json`` records the hashes that tie a stage to
the one it started from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rrg_bench.api.training import TrainRequest
from rrg_bench.api.types import Study
from rrg_bench.baselines.common.generation import report_lengths
from rrg_bench.baselines.common.images import pixel_batch
from rrg_bench.baselines.common.session import TrainingSession
from rrg_bench.baselines.common.splits import study_images
from rrg_bench.baselines.common.trainloop import ModelIO, forward_loss
from rrg_bench.baselines.common.vision import ImageConfig
from rrg_bench.baselines.s2d_align.configuration import MemoryConfig, S2DAlignConfig, target_text
from rrg_bench.baselines.s2d_align.keyphrases import Source, extract_key_phrases, multi_hot, phrase_vocabulary
from rrg_bench.baselines.s2d_align.model import BANK_KEY, S2DAlign, bank_sha256
from rrg_bench.baselines.s2d_align.presets import S2DRecipe, resolve_recipe
from rrg_bench.baselines.s2d_align.references import reference_tails
from rrg_bench.errors import UsageError

TRAINING_INFO = "s2d_align_training.json"


# ------------------------------------------------------------------ data
@dataclass(frozen=True)
class Example:
    study_id: str
    images: tuple[Path, ...]
    tail: str
    target: tuple[int, ...]
    phrases: tuple[float, ...] = ()
    references: tuple[str, ...] = ()  # retrieved study ids (provenance, tests)
    key_phrases: tuple[str, ...] = ()
    report_tokens: int = 0  # the report's own tokens in ``target`` (before a prefix's re-tokenisation)


class Examples(torch.utils.data.Dataset):
    def __init__(self, examples: list[Example], image: ImageConfig) -> None:
        self.examples, self.image = examples, image

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ex = self.examples[index]
        return {"tail": ex.tail, "target": ex.target, "phrases": ex.phrases,
                "pixel_values": pixel_batch(ex.images, self.image, [ex.study_id] * len(ex.images))}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    batch = {"tails": [it["tail"] for it in items], "targets": [it["target"] for it in items],
             "pixel_values": torch.cat([it["pixel_values"] for it in items]),
             "image_counts": [int(it["pixel_values"].shape[0]) for it in items],
             "attention_mask": torch.tensor([len(it["target"]) for it in items])}  # token weight for evaluation
    if items[0]["phrases"]:
        batch["phrase_targets"] = torch.tensor([it["phrases"] for it in items], dtype=torch.float32)
    return batch


def build_examples(config: S2DAlignConfig, tokenizer: Any, studies: Sequence[Study],
                   neighbours: Sequence[Sequence[tuple[str, str]]], phrases: Sequence[Sequence[str]]) -> list[Example]:
    tails = reference_tails(config, tokenizer, neighbours)
    out = []
    for s, tail, refs, ps in zip(studies, tails, neighbours, phrases):
        # the report keeps its full token budget; prefix-mode phrases come on top of it
        report_ids = tokenizer(s.reference, add_special_tokens=False)["input_ids"][: config.max_report_tokens]
        head = target_text(config, "", list(ps))
        ids = (tokenizer(head.rstrip(), add_special_tokens=False)["input_ids"] + tokenizer(
            " " + tokenizer.decode(report_ids), add_special_tokens=False)["input_ids"]) if head else report_ids
        vec = tuple(multi_hot(ps, config.phrase_vocab)) if config.keyphrase_target == "head" else ()
        out.append(Example(s.study_id, study_images(s, config.images), tail, tuple(ids) + (tokenizer.eos_token_id,),
                           vec, tuple(r for r, _ in refs), tuple(ps), len(report_ids)))
    return out


def keyphrase_new_tokens(examples: Sequence[Example]) -> tuple[int, int]:
    """(fewest, most) tokens the targets hold beyond their report and EOS: a prefix target's phrase
    list. Added to the report's budget, the longest target fits whenever the report's does."""
    extra = [max(0, len(ex.target) - 1 - ex.report_tokens) for ex in examples]
    return (min(extra), max(extra)) if extra else (0, 0)


# ------------------------------------------------------------------ model
def trained_state_sha256(model: S2DAlign) -> str:
    """Hash of everything a stage trains or carries (non-LLM weights incl. the memory bank, LoRA
    adapters, modules_to_save), without a stage-3 phrase head: equal across a stage boundary."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if name.startswith("keyphrase_head."):
            continue
        if name.startswith("llm.") and "lora_" not in name and "modules_to_save" not in name:
            continue
        t = t.detach().float().cpu().contiguous()
        h.update(name.encode() + t.numpy().tobytes())
    return h.hexdigest()


def _fresh_model(request: TrainRequest, recipe: S2DRecipe, train: list[Study]) -> tuple[S2DAlign, Any, bool]:
    from rrg_bench.baselines.common.mllm import apply_recipe_lora, recipe_llm

    fields = dict(
        projector=recipe.projector, images=recipe.images, llm_dtype=recipe.llm_dtype, lora=recipe.lora,
        memory=MemoryConfig(slots=recipe.memory_slots, heads=recipe.memory_heads, output=recipe.memory_output,
                            trainable=recipe.memory_trainable),
        **report_lengths(request.dataset.name, recipe),
    )
    torch.manual_seed(request.seed)

    def tiny_tokenizer() -> Any:
        from rrg_bench.baselines.s2d_align.tiny import train_tokenizer

        return train_tokenizer((s.reference for s in train), recipe.tiny_vocab_size)

    llm, tokenizer, llm_fields, bundle = recipe_llm(recipe, model="s2d_align", seed=request.seed,
                                                    tiny_tokenizer=tiny_tokenizer)
    config, pretrained = _vision(recipe, {**fields, **llm_fields})
    model = S2DAlign(config, llm)
    if pretrained is not None:
        missing, _ = model.vision_encoder.load_state_dict(pretrained, strict=False)
        missing = [k for k in missing if "pooler" not in k]
        if missing:
            raise UsageError(f"s2d_align: vision_model={recipe.vision_model} lacks weights for {missing[:3]}")
    apply_recipe_lora(model, recipe)
    model.set_tokenizer(tokenizer)
    return model, tokenizer, bundle


def _vision(recipe: S2DRecipe, fields: dict[str, Any]) -> tuple[S2DAlignConfig, dict[str, torch.Tensor] | None]:
    """(the stage-1 config, the pretrained vision weights to load, or None for tiny). CLIP/SigLIP
    checkpoints contribute their vision tower only."""
    if recipe.tiny:
        from rrg_bench.baselines.s2d_align.tiny import tiny_vision_config

        return S2DAlignConfig(vision_config=tiny_vision_config(recipe.tiny_image_size),
                              image=ImageConfig(size=recipe.tiny_image_size), **fields), None
    from transformers import AutoModel

    from rrg_bench.baselines.common.vision import image_config_for

    loaded = AutoModel.from_pretrained(recipe.vision_model, revision=recipe.vision_revision)
    if hasattr(loaded, "vision_model") and hasattr(loaded.config, "vision_config"):
        vision = loaded.config.vision_config.to_dict()
        pretrained = {f"vision_model.{k}": v for k, v in loaded.vision_model.state_dict().items()}
    else:
        vision, pretrained = loaded.config.to_dict(), loaded.state_dict()
    image = image_config_for(recipe.vision_model, recipe.vision_revision, vision)
    return S2DAlignConfig(vision_config=vision, image=image, **fields), pretrained


def stage_config(previous: S2DAlignConfig, stage: int, recipe: S2DRecipe, dataset: str, split: str) -> S2DAlignConfig:
    """The next stage's config: the previous architecture, this stage's prompt/target settings."""
    refs = recipe.references_k if stage == 2 or (stage == 3 and recipe.stage3_references) else 0
    return previous.model_copy(update=dict(
        stage=stage, references_k=refs, max_reference_tokens=recipe.max_reference_tokens,
        retrieval_encoder=recipe.retrieval_encoder, retrieval_revision=recipe.retrieval_revision,
        retrieval_image=recipe.retrieval_image,
        keyphrase_target=recipe.keyphrase_target if stage == 3 else "none",
        keyphrase_polarity=recipe.keyphrase_polarity, keyphrase_weight=recipe.keyphrase_weight,
        trained_on={"dataset": dataset, "split": split, "stage": stage, "init": recipe.init},
    ), deep=True)


def _model(request: TrainRequest, recipe: S2DRecipe, train: list[Study], resume_from: Path | None
           ) -> tuple[S2DAlign, Any, bool, dict[str, Any]]:
    """(model, tokenizer, bundle_llm, provenance of where the weights came from)."""
    from rrg_bench.baselines.s2d_align.loading import load_model

    assert request.stage is not None  # resolve_recipe accepted only 1, 2 or 3
    stage = request.stage
    if resume_from is not None:
        model, tokenizer = load_model(resume_from / "model", trainable_lora=True)
        return model, tokenizer, (resume_from / "model" / "llm").is_dir(), {"resumed_from": str(resume_from)}
    if stage == 1:
        model, tokenizer, bundle = _fresh_model(request, recipe, train)
        model.config = model.config.model_copy(update=dict(
            stage=1, trained_on={"dataset": request.dataset.name, "split": request.train_split, "stage": 1}))
        return model, tokenizer, bundle, {"init": None}
    init = Path(recipe.init).expanduser().resolve()
    if not (init / "config.json").is_file():
        raise UsageError(f"s2d_align: init={recipe.init} is not a checkpoint directory (no config.json)")
    previous = S2DAlignConfig.load(init)
    if previous.stage != stage - 1:
        raise UsageError(f"s2d_align --stage {stage} continues stage {stage - 1}, but init={init} is a stage-"
                         f"{previous.stage} checkpoint")
    config = stage_config(previous, stage, recipe, request.dataset.name, request.train_split)
    model, tokenizer = load_model(init, trainable_lora=True, config=config, allow_missing=("keyphrase_head.",))
    return model, tokenizer, (init / "llm").is_dir(), {
        "init": str(init), "init_trained_sha256": trained_state_sha256(model),
        "init_memory_bank_sha256": bank_sha256(model.state_dict()[BANK_KEY])}


# ------------------------------------------------------------------ the curriculum
def _reference_index(request: TrainRequest, recipe: S2DRecipe, train: list[Study], out: Path, device: str):
    from rrg_bench.baselines.s2d_align.references import ReferenceIndex

    cache = Path(recipe.retrieval_cache_dir).expanduser() if recipe.retrieval_cache_dir else out / "retrieval_cache"
    return ReferenceIndex(train, split=request.train_split, encoder=recipe.retrieval_encoder,
                          revision=recipe.retrieval_revision, image=recipe.retrieval_image, device=device,
                          cache_dir=cache, dataset=request.dataset.name)


def prepare_examples(request: TrainRequest, recipe: S2DRecipe, model: S2DAlign, tokenizer, train: list[Study],
                     val: list[Study], out: Path, device: str) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """Both splits' examples for the model's stage, and the retrieval / key-phrase provenance.
    Phrases come from the study's own report, references never from the study's own patient (another
    of its studies would hand it its own findings); a prefix target's phrase list widens the new-token
    budget, or generation would cut the report short."""
    config = model.config
    info: dict[str, Any] = {}
    if config.references_k:
        index = _reference_index(request, recipe, train, out, device)
        train_refs, val_refs = index.neighbours(train, config.references_k), index.neighbours(val, config.references_k)
        info["retrieval"] = index.fingerprint()
    else:
        train_refs, val_refs = [[] for _ in train], [[] for _ in val]
    if config.keyphrase_target != "none":
        train_phrases, source = extract_key_phrases([s.reference for s in train], recipe.keyphrase_source,
                                                    recipe.keyphrase_polarity, recipe.radgraph_dir)
        used: Source = "radgraph" if source.startswith("radgraph:") else "chexpert_rules"
        val_phrases, _ = extract_key_phrases([s.reference for s in val], used,
                                             recipe.keyphrase_polarity, recipe.radgraph_dir)
        vocab = phrase_vocabulary(train_phrases, recipe.phrase_vocab_size) if config.keyphrase_target == "head" else []
        if config.keyphrase_target == "head" and (config.phrase_vocab != vocab or model.keyphrase_head is None):
            config.phrase_vocab = vocab
            model.add_keyphrase_head(vocab)
        config.keyphrase_source = source
        info["keyphrase_source"] = source
    else:
        train_phrases, val_phrases = [[] for _ in train], [[] for _ in val]
    train_examples = build_examples(config, tokenizer, train, train_refs, train_phrases)
    if config.phrases_in_target:  # recomputed on resume from the same targets: never added twice
        config.keyphrase_new_tokens = keyphrase_new_tokens(train_examples)
        info["new_tokens"] = {**config.new_tokens(), "report": [config.min_new_tokens, config.max_new_tokens],
                              "keyphrase": list(config.keyphrase_new_tokens)}
    return train_examples, build_examples(config, tokenizer, val, val_refs, val_phrases), info


def train(request: TrainRequest) -> Path:
    """Train the stage named by ``request.stage``; returns its checkpoint (``init=`` of the next stage,
    or ``--checkpoint`` of ``bench run``)."""
    preset, recipe = resolve_recipe(request.stage, request.preset, request.overrides)
    session = TrainingSession.open(request, preset, recipe, model="s2d_align", images=recipe.images)
    train_studies = session.splits.train
    resume_from = session.prepare(stage=request.stage)
    model, tokenizer, bundle, origin = _model(request, recipe, train_studies, resume_from)
    model.vision_encoder.requires_grad_(recipe.train_vision)
    device = session.accelerator.device
    model.to(device)
    train_examples, val_examples, data_info = prepare_examples(request, recipe, model, tokenizer, train_studies,
                                                               session.splits.val, session.out, str(device))
    start_memory = bank_sha256(model.state_dict()[BANK_KEY])
    image = model.config.image
    loaders = session.loaders(Examples(train_examples, image), Examples(val_examples, image), collate)

    def write_model(unwrapped: S2DAlign, directory: Path) -> None:
        from rrg_bench.baselines.s2d_align.references import save_index_ids

        unwrapped.save(directory, tokenizer, bundle_llm=bundle)
        if unwrapped.config.references_k:
            save_index_ids(directory, request.dataset.name, request.train_split, [s.study_id for s in train_studies])

    io = ModelIO(compute_loss=forward_loss(("tails", "targets", "pixel_values", "image_counts", "phrase_targets")),
                 write_model=write_model, info_name=TRAINING_INFO,
                 training_info=lambda kind, state: session.info(kind, state, stage=request.stage,
                                                                start_memory_bank_sha256=start_memory,
                                                                **origin, **data_info))
    return session.fit(model, loaders, io, start_fields={"preset": preset, "stage": request.stage})
