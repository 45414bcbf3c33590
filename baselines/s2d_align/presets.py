"""The curriculum's recipe as named presets with type-checked ``--set key=value`` overrides.

One recipe class serves the three stages (``--stage 1|2|3``); stage 2 and 3 start from the
previous stage's checkpoint (``--set init=DIR``). Architecture fields (vision encoder, projector,
memory, LLM, LoRA) are read only at stage 1; later stages inherit them from ``init``.
Nothing here is from the paper (its hyper-parameters are unknown, reference/models.md §3): the
GPU preset is LLaVA-1.5's fine-tuning recipe (lr 2e-4 with LoRA, cosine, 3 % warm-up, batch 16 via
accumulation) — our choice, listed in CARD.md.
"""

from __future__ import annotations

from typing import Any, Literal

from rrg_bench.baselines.common.presets import ImageTextRecipe, resolve_preset
from rrg_bench.errors import UsageError

#: our choice of backbone (the paper's is unknown): LLaVA-1.5's vision tower and a 7B chat LLM
DEFAULT_VISION = "openai/clip-vit-large-patch14-336"
DEFAULT_LLM = "lmsys/vicuna-7b-v1.5"


class S2DRecipe(ImageTextRecipe):
    #: previous stage's checkpoint directory (required for --stage 2 and 3)
    init: str = ""
    images: Literal["all", "frontal"] = "frontal"
    # -- architecture (stage 1 only) --
    vision_model: str = DEFAULT_VISION
    vision_revision: str | None = None
    train_vision: bool = False
    projector: Literal["mlp2x_gelu", "linear"] = "mlp2x_gelu"
    memory_slots: int = 64
    memory_heads: int = 8
    memory_output: Literal["residual", "append"] = "residual"
    memory_trainable: bool = True
    llm: str = DEFAULT_LLM
    llm_revision: str | None = None
    llm_dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    bundle_llm: bool = False
    lora: bool = True
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    lora_targets: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lora_modules_to_save: list[str] = []
    tiny_vocab_size: int = 512
    # -- stage 2 (and 3): references --
    references_k: int = 3
    max_reference_tokens: int = 60
    retrieval_encoder: str = "pixel"
    retrieval_revision: str | None = None
    retrieval_image: Literal["frontal", "first"] = "frontal"
    retrieval_cache_dir: str = ""
    #: keep stage 2's references in the stage-3 prompt
    stage3_references: bool = True
    # -- stage 3: key phrases --
    keyphrase_target: Literal["prefix", "head"] = "prefix"
    keyphrase_source: Literal["auto", "radgraph", "chexpert_rules"] = "auto"
    keyphrase_polarity: Literal["all", "present"] = "all"
    radgraph_dir: str | None = None
    phrase_vocab_size: int = 256
    keyphrase_weight: float = 1.0
    # -- lengths --
    max_report_tokens: int | None = None
    min_new_tokens: int | None = None
    max_new_tokens: int | None = None


_TINY = dict(tiny=True, lr=5e-3, weight_decay=0.0, schedule="cosine", warmup_ratio=0.05, batch_size=8, epochs=10,
             grad_clip=1.0, bf16=False, llm="tiny", vision_model="tiny", bundle_llm=True, llm_dtype="float32",
             memory_slots=8, memory_heads=2, lora=True, lora_r=16, lora_alpha=16, lora_dropout=0.0,
             lora_modules_to_save=["lm_head"], references_k=1, max_reference_tokens=30, max_report_tokens=60,
             min_new_tokens=5, max_new_tokens=30, phrase_vocab_size=32)

PRESETS: dict[str, dict[str, Any]] = {
    "llava_lora": dict(lr=2e-4, weight_decay=0.0, schedule="cosine", warmup_ratio=0.03, batch_size=4, grad_accum=4,
                       epochs=3, grad_clip=1.0),
    "tiny": _TINY,
}


def resolve_recipe(stage: int | None, preset: str | None, overrides: dict[str, str] | None) -> tuple[str, S2DRecipe]:
    if stage not in (1, 2, 3):
        raise UsageError("s2d_align trains as a three-stage curriculum: --stage 1 (image-report pairing), then "
                         "--stage 2 --set init=<stage-1 checkpoint> (+ references), then --stage 3 --set "
                         "init=<stage-2 checkpoint> (+ key phrases)")
    name = preset or "llava_lora"
    recipe = resolve_preset(S2DRecipe, "s2d_align", name, PRESETS, overrides)
    if stage == 1 and recipe.init:
        raise UsageError("s2d_align --stage 1 starts from the backbone; init= is for --stage 2 and 3")
    if stage in (2, 3) and not recipe.init:
        raise UsageError(
            f"s2d_align --stage {stage} continues the curriculum: --set init=<stage-{stage - 1} checkpoint>"
        )
    return name, recipe
