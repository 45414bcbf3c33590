"""Configurations of AM-MRG's two models, saved as ``config.json`` inside each checkpoint.

One config describes a whole checkpoint (encoder and Q-Former architectures, Hopfield settings,
prompt, LLM reference, memory hashes, decoding defaults), so a results record can name a model by
its config alone. Q-Former/LLM architectures are stored as ``transformers`` config dicts (with ``model_type``) and
rebuilt with ``AutoConfig.for_model``; the encoder is a config choice too.
The encoder is ARM-L (``model_type`` "arm", ``arm.py``) in the paper's configuration and a ``transformers``
encoder in the substitutes. Defaults follow reference/models.md §2 (authors' code at Event-AHU@131e5ec).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rrg_bench.baselines.common.vision import ImageConfig
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS

NUM_OBSERVATIONS = len(CHEXPERT_LABELS)  # 14 disease queries, one per CheXpert observation

#: ``prompt_wrap`` of the authors' code (also in the paper's figure); ``<ImageHere>`` marks the prefix
PROMPT = ("Human: <Img><ImageHere></Img> Generate a comprehensive and detailed diagnosis report for this chest xray "
          "image. \nAssistant:")
IMAGE_PLACEHOLDER = "<ImageHere>"

#: decoding of the authors' test scripts: beam 3, repetition penalty 2.0, length penalty 2.0 (the
#: defaults of ``LLMDecodingParams``); min/max new tokens and the training report budget per dataset
#: family are the authors' too (``NEW_TOKENS``, ``MAX_REPORT_TOKENS`` in ``baselines.common.generation``)
PAPER_DECODING = {"num_beams": 3, "repetition_penalty": 2.0, "length_penalty": 2.0}

PAPER_SWIN = "microsoft/swin-large-patch4-window7-224"
#: the paper's encoder: ARM-L from MambaXray-VL's ``MambaXrayCLIP-L.pth`` (a weights entry or a path)
PAPER_VISION = "mambaxray-clip-l"
#: the named substitute of the ``vit_*`` presets: ViT-L/16 in21k, the same 197 x 1,024 token shape
VIT_SUBSTITUTE = "google/vit-large-patch16-224-in21k"
#: the BLIP-2 checkpoint whose Q-Former starts stage 2 (a weights entry or a path)
PAPER_QFORMER_INIT = "blip2-qformer-flant5xxl"
PAPER_LLM = {"mimic_cxr": "meta-llama/Llama-2-7b-chat-hf", "iu_xray": "Qwen/Qwen1.5-0.5B-Chat"}
PAPER_REPORT_ENCODER = "emilyalsentzer/Bio_ClinicalBERT"


def paper_swin_config() -> dict[str, Any]:
    """Swin-L 224 px (patch 4, window 7, embed 192, depths 2-2-18-2, heads 6-12-24-48, drop-path 0.1):
    7 x 7 = 49 tokens of 1,536-d after the final LayerNorm."""
    from transformers import SwinConfig

    return SwinConfig(image_size=224, patch_size=4, embed_dim=192, depths=[2, 2, 18, 2],
                      num_heads=[6, 12, 24, 48], window_size=7, drop_path_rate=0.1).to_dict()


def paper_qformer_config(encoder_width: int) -> dict[str, Any]:
    """BLIP-2's Q-Former: BERT-base (12 layers, 768-d), cross-attention every 2nd layer, no text input."""
    from transformers import Blip2QFormerConfig

    return Blip2QFormerConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                              cross_attention_frequency=2, encoder_hidden_size=encoder_width).to_dict()


def vit_large_config() -> dict[str, Any]:
    """ViT-L/16 at 224 px (the substitute): CLS + 196 patches = 197 tokens of 1,024-d, ARM-L's shape."""
    from transformers import ViTConfig

    return ViTConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                     image_size=224, patch_size=16).to_dict()


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def save(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "config.json").write_text(json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True))

    @classmethod
    def load(cls, directory: Path):
        return cls.model_validate_json((Path(directory) / "config.json").read_text())


class Stage1Config(_Config):
    """Disease-aware token mining: Swin -> Q-Former with 14 disease queries -> 14 two-way heads."""

    model_type: Literal["am_mrg_stage1"] = "am_mrg_stage1"
    swin_config: dict[str, Any]
    qformer_config: dict[str, Any]
    image: ImageConfig = ImageConfig()
    num_queries: int = NUM_OBSERVATIONS
    #: hidden sizes of each observation's MLP head (authors: 1536 -> 384 -> 48 -> 48 -> 2)
    head_dims: list[int] = [384, 48, 48]
    label_smoothing: float = 0.1
    observations: list[str] = list(CHEXPERT_LABELS)

    @property
    def encoder_width(self) -> int:
        return int(self.qformer_config["encoder_hidden_size"])


class HopfieldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_heads: int = 6
    hidden_size: int = 1024  # association (key/query) dimension per head
    pattern_size: int = 768  # value dimension per head
    beta: float = 4.0
    dropout: float = 0.1


class AMMRGConfig(_Config):
    """The stage-2 generator: encoder, Q-Former, V/R-Hopfield, projections, prompt and LLM."""

    model_type: Literal["am_mrg"] = "am_mrg"
    vision_config: dict[str, Any]
    qformer_config: dict[str, Any]
    image: ImageConfig = ImageConfig()
    num_queries: int = NUM_OBSERVATIONS
    hopfield: HopfieldConfig = HopfieldConfig()
    visual_memory_dim: int = 768
    report_memory_dim: int = 768
    #: sha256 of ``memories/visual.safetensors`` / ``memories/report.safetensors`` (checked at load)
    visual_memory_sha256: str = ""
    report_memory_sha256: str = ""
    prompt: str = PROMPT
    #: LLM directory or hub id; a relative path is inside the checkpoint (``llm`` for bundled LLMs)
    llm: str = "llm"
    llm_revision: str | None = None
    #: sha256 of the LLM's weight/config files at training time (external LLMs; "" when bundled)
    llm_sha256: str = ""
    llm_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    lora: bool = False
    #: "all": average the token sequences of every image of a study (authors); "frontal": one view
    images: Literal["all", "frontal"] = "all"
    max_report_tokens: int = 100
    min_new_tokens: int = 80
    max_new_tokens: int = 120
    #: what the trainer used (provenance only)
    trained_on: dict[str, Any] = Field(default_factory=dict)

    def num_vision_tokens(self) -> int:
        return vision_token_count(self.vision_config, self.image.size)

    def prefix_length(self) -> int:
        """Visual tokens handed to the LLM: F (encoder tokens) + Q_f + V + R (3 x 14 queries)."""
        return self.num_vision_tokens() + 3 * self.num_queries


def vision_token_count(vision_config: dict[str, Any], image_size: int) -> int:
    """Tokens in the encoder's last hidden state at ``image_size`` (ViT and ARM: CLS + patches, DINOv3:
    CLS + registers + patches, Swin: final-stage grid)."""
    kind = vision_config["model_type"]
    if kind == "swin":
        stride = vision_config["patch_size"] * 2 ** (len(vision_config["depths"]) - 1)
        return (image_size // stride) ** 2
    grid = (image_size // vision_config["patch_size"]) ** 2
    if kind in ("vit", "deit", "dinov2", "arm"):
        return grid + 1
    if kind == "dinov3_vit":
        return grid + 1 + int(vision_config.get("num_register_tokens", 0))
    raise ValueError(f"am_mrg: vision encoder type {kind!r} is not supported (arm, vit, dinov2, dinov3_vit, swin)")
