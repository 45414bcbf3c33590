"""Training recipes of both stages as named presets, with type-checked ``--set key=value`` overrides.

Stage 1 (``--stage 1``): SwinCheX defaults as the authors ran them (reference/models.md §2.2):
AdamW, lr 5e-4 x batch/512 (batch 2), weight decay 0.05, gradient clipping 5.0, 20 warm-up epochs of
a 300-epoch cosine whose epoch-25 checkpoint feeds Grad-CAM — i.e. 25 epochs, the last 5 at (nearly)
the peak rate, and the last epoch's model (not a validation pick) mines the memory.
Stage 2 (``--stage 2``), ``paper_mimic`` / ``paper_iu``: the authors' AM_MRG.py and scripts — ARM-L
from ``MambaXrayCLIP-L.pth`` (trained), the BLIP-2 Q-Former, Llama-2-7b-chat (IU X-Ray:
Qwen1.5-0.5B-Chat) frozen, AdamW lr 1e-4 with PyTorch's default weight decay 0.01,
``CosineAnnealingLR(T_max=epochs, eta_min=1e-6)`` stepped once per epoch, batch 2, 10 epochs (IU 30),
training text cleaned by R2Gen's cleaner, validation by generation every half epoch (IU: every epoch)
and the checkpoint with the best validation BLEU-4 kept. ``vit_mimic`` / ``vit_iu`` are the same
recipe on the named substitute encoder (ViT-L/16 in21k) as this harness trained before ARM-L existed
here: random Q-Former, per-step cosine to 0, raw report text, selection by validation loss.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from rrg_bench.baselines.am_mrg.configuration import (
    PAPER_LLM,
    PAPER_QFORMER_INIT,
    PAPER_REPORT_ENCODER,
    PAPER_SWIN,
    PAPER_VISION,
    VIT_SUBSTITUTE,
)
from rrg_bench.baselines.common.presets import ImageTextRecipe, resolve_preset
from rrg_bench.errors import UsageError


class Stage1Recipe(ImageTextRecipe):
    swin_model: str = PAPER_SWIN
    swin_revision: str | None = None
    label_smoothing: float = 0.1
    # -- Grad-CAM mining of the visual memory --
    cam_threshold: float = 0.75
    cam_top_k: int = 6
    maps_num: int = 500
    memory_seed: int = 0
    cam_batch_size: int = 8
    #: which model mines the memory: "final" (the authors' fixed epoch-25 checkpoint) or "best" (validation loss)
    checkpoint: Literal["best", "final"] = "best"


class Stage2Recipe(ImageTextRecipe):
    #: stage-1 checkpoint directory (holds ``memories/visual.*``); required
    stage1: str = ""
    #: "arm": ARM-L (``vision_model`` = MambaXrayCLIP-L.pth, a path or the weights entry; "tiny": random);
    #: "transformers": any Hugging Face encoder by id or directory (the substitutes)
    encoder: Literal["arm", "transformers"] = "transformers"
    vision_model: str = VIT_SUBSTITUTE
    vision_revision: str | None = None
    #: keep the encoder frozen and cache its features (the authors train it; a CPU/GPU-memory saver)
    freeze_vision: bool = False
    feature_cache_dir: str = ""
    cache_dtype: Literal["float16", "float32"] = "float16"
    cache_batch_size: int = 16
    #: BLIP-2 Q-Former initialisation: LAVIS's .pth (or its weights entry) or a Hugging Face BLIP-2 directory
    #: ("" = random)
    qformer_init: str = ""
    #: the floor of ``schedule=cosine_epoch`` (the authors' CosineAnnealingLR eta_min)
    min_lr: float = 0.0
    #: validations per epoch (the authors' val_check_interval 0.5 is 2)
    evals_per_epoch: int = 1
    #: which validation picks ``best/``: loss, or BLEU-4 of reports generated with the checkpoint's decoding
    select_by: Literal["val_loss", "val_bleu4"] = "val_loss"
    #: training (and validation-reference) text: as the dataset gives it, or R2Gen's cleaner of the dataset family
    report_text: Literal["raw", "r2gen_clean"] = "raw"
    #: the dataset a paper preset is defined on ("" = any): training on another is refused
    paper_dataset: str = ""
    llm: str = PAPER_LLM["mimic_cxr"]
    llm_revision: str | None = None
    llm_dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    #: store the LLM inside every saved model (always for tiny random LLMs)
    bundle_llm: bool = False
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: list[str] = ["q_proj", "v_proj"]
    #: LLM modules trained in full next to the adapters (peft ``modules_to_save``, e.g. lm_head)
    lora_modules_to_save: list[str] = []
    report_encoder: str = PAPER_REPORT_ENCODER
    report_encoder_revision: str | None = None
    report_total: int = 6000
    report_max_length: int = 256
    memory_seed: int = 0
    #: report tokens in training and decoding lengths; None = the dataset family's (reference §2.3)
    max_report_tokens: int | None = None
    min_new_tokens: int | None = None
    max_new_tokens: int | None = None
    hopfield_heads: int = 6
    hopfield_hidden: int = 1024
    hopfield_pattern: int = 768
    hopfield_beta: float = 4.0
    hopfield_dropout: float = 0.1
    tiny_vocab_size: int = 512


_TINY_LOOP = dict(tiny=True, lr=2e-3, weight_decay=0.0, schedule="cosine", warmup_ratio=0.05, batch_size=8,
                  epochs=10, grad_clip=1.0, bf16=False, labeler="chexpert_rules")

#: the authors' stage-2 switches (AM_MRG.py: configure_optimizers, on_validation_epoch_end; data_helper.py)
_PAPER_SWITCHES = dict(schedule="cosine_epoch", min_lr=1e-6, warmup_ratio=0.0, select_by="val_bleu4",
                       report_text="r2gen_clean")
_PAPER_2 = dict(_PAPER_SWITCHES, encoder="arm", vision_model=PAPER_VISION, qformer_init=PAPER_QFORMER_INIT, lr=1e-4,
                weight_decay=0.01, batch_size=2, images="all", llm_dtype="float16")
_VIT_2 = dict(encoder="transformers", vision_model=VIT_SUBSTITUTE, lr=1e-4, weight_decay=0.01, batch_size=2)
# a *random* frozen LLM cannot be steered by a prefix alone (RMS-normed states times a 0.02-std head give
# near-uniform logits), so the tiny presets adapt it: LoRA on every projection + a trained head
_TINY_2 = dict(_TINY_LOOP, lr=5e-3, llm="tiny", vision_model="tiny", report_encoder="tiny", report_total=60,
               bundle_llm=True, llm_dtype="float32", hopfield_heads=2, hopfield_hidden=16, hopfield_pattern=16,
               freeze_vision=True, cache_dtype="float32", max_report_tokens=60, lora=True, lora_r=16,
               lora_targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
               lora_modules_to_save=["lm_head"], min_new_tokens=5, max_new_tokens=30)

PRESETS: dict[int, dict[str, dict[str, Any]]] = {
    1: {
        "paper": dict(lr=5e-4 * 2 / 512, weight_decay=0.05, schedule="constant", warmup_ratio=20 / 25, batch_size=2,
                      epochs=25, grad_clip=5.0, checkpoint="final"),
        "tiny": dict(_TINY_LOOP, lr=5e-3, maps_num=2, cam_batch_size=16),
    },
    2: {
        "paper_mimic": dict(_PAPER_2, llm=PAPER_LLM["mimic_cxr"], epochs=10, evals_per_epoch=2,
                            paper_dataset="mimic_cxr/r2gen"),
        "paper_iu": dict(_PAPER_2, llm=PAPER_LLM["iu_xray"], epochs=30, evals_per_epoch=1,
                         paper_dataset="iu_xray/r2gen"),
        "vit_mimic": dict(_VIT_2, llm=PAPER_LLM["mimic_cxr"], epochs=10),
        "vit_iu": dict(_VIT_2, llm=PAPER_LLM["iu_xray"], epochs=30),
        "tiny": _TINY_2,
        # the paper's switches on tiny random models: ARM encoder, per-epoch cosine, BLEU-4 selection, R2Gen text
        "tiny_paper": {**_TINY_2, **_PAPER_SWITCHES, "encoder": "arm", "min_lr": 1e-4, "evals_per_epoch": 2},
    },
}


def default_preset(stage: int, dataset: str) -> str:
    if stage == 1:
        return "paper"
    return "paper_iu" if dataset.startswith("iu_xray") else "paper_mimic"


def resolve_recipe(stage: int | None, preset: str | None, overrides: dict[str, str] | None, dataset: str
                   ) -> tuple[str, Stage1Recipe | Stage2Recipe]:
    """Stage + preset name (default: the paper's for this dataset) + string overrides -> validated recipe."""
    if stage not in (1, 2):
        raise UsageError("am_mrg trains in two stages: pass --stage 1 (disease classifier + visual memory), "
                         "then --stage 2 --set stage1=<stage-1 checkpoint> (generator)")
    cls = Stage1Recipe if stage == 1 else Stage2Recipe
    name = preset or default_preset(stage, dataset)
    recipe = cast("Stage1Recipe | Stage2Recipe",
                  resolve_preset(cls, f"am_mrg stage {stage}", name, PRESETS[stage], overrides))
    wanted = getattr(recipe, "paper_dataset", "")
    if wanted and dataset != wanted:
        raise UsageError(f"am_mrg stage 2 preset {name!r} is the authors' recipe on {wanted} (one image per R2Gen "
                         f"entry, R2Gen's split and cleaning), not on {dataset}: train with --dataset {wanted}, or "
                         f"keep the recipe on this dataset with --set paper_dataset= (a deviation, recorded), or use "
                         f"the substitute preset vit_{name.split('_', 1)[1]}")
    return name, recipe
