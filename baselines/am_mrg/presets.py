"""Training recipes of both stages as named presets, with type-checked ``--set key=value`` overrides.

Stage 1 (``--stage 1``): SwinCheX defaults as the authors ran them (reference/models.md §2.2):
AdamW, lr 5e-4 x batch/512 (batch 2), weight decay 0.05, 20 warm-up epochs of a 300-epoch cosine
whose epoch-25 checkpoint feeds Grad-CAM — i.e. 25 epochs, the last 5 at (nearly) the peak rate.
Stage 2 (``--stage 2``): AdamW lr 1e-4, weight decay 0.01, cosine, batch 2, 10 epochs (IU X-Ray 30),
Llama-2-7b-chat (IU X-Ray: Qwen1.5-0.5B-Chat), frozen LLM (§2.3).
"""

from __future__ import annotations

from typing import Any, Literal

from rrg_bench.baselines.am_mrg.configuration import PAPER_LLM, PAPER_REPORT_ENCODER, PAPER_SWIN, PAPER_VISION
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


class Stage2Recipe(ImageTextRecipe):
    #: stage-1 checkpoint directory (holds ``memories/visual.*``); required
    stage1: str = ""
    vision_model: str = PAPER_VISION
    vision_revision: str | None = None
    #: keep the encoder frozen and cache its features (the authors train it; a CPU/GPU-memory saver)
    freeze_vision: bool = False
    feature_cache_dir: str = ""
    cache_dtype: Literal["float16", "float32"] = "float16"
    cache_batch_size: int = 16
    #: a BLIP-2 checkpoint directory whose ``qformer.*`` weights initialise the Q-Former ("" = random)
    qformer_init: str = ""
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

PRESETS: dict[int, dict[str, dict[str, Any]]] = {
    1: {
        "paper": dict(lr=5e-4 * 2 / 512, weight_decay=0.05, schedule="constant", warmup_ratio=20 / 25, batch_size=2,
                      epochs=25),
        "tiny": dict(_TINY_LOOP, lr=5e-3, maps_num=2, cam_batch_size=16),
    },
    2: {
        "paper_mimic": dict(llm=PAPER_LLM["mimic_cxr"], lr=1e-4, weight_decay=0.01, batch_size=2, epochs=10),
        "paper_iu": dict(llm=PAPER_LLM["iu_xray"], lr=1e-4, weight_decay=0.01, batch_size=2, epochs=30),
        # a *random* frozen LLM cannot be steered by a prefix alone (RMS-normed states times a 0.02-std head
        # give near-uniform logits), so the tiny preset adapts it: LoRA on every projection + a trained head
        "tiny": dict(_TINY_LOOP, lr=5e-3, llm="tiny", vision_model="tiny", report_encoder="tiny", report_total=60,
                     bundle_llm=True, llm_dtype="float32", hopfield_heads=2, hopfield_hidden=16, hopfield_pattern=16,
                     freeze_vision=True, cache_dtype="float32", max_report_tokens=60, lora=True, lora_r=16,
                     lora_targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                     lora_modules_to_save=["lm_head"], min_new_tokens=5, max_new_tokens=30),
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
    return name, resolve_preset(cls, f"am_mrg stage {stage}", name, PRESETS[stage], overrides)
