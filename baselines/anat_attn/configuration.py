"""Configuration of the LAnA re-implementation: encoder, decoder and the anatomical-attention switches.

One config object describes a whole checkpoint, so ``save_pretrained`` / ``from_pretrained``
round-trip every choice that changes outputs (mask variant, bias rows, strength, image size),
and a results record can name a model by its config alone. Defaults follow the paper's
description (reference/models.md §1.2–1.4, authors' HEAD code): DINOv3 ViT-S/16 at 512 px
skipping CLS + 4 registers, GPT-2 small with positions interpolated to 2048, soft bias of
strength 1 on every query row, lung ∪ heart binary masks.
"""

from __future__ import annotations

from typing import Any, Literal

from transformers import DINOv3ViTConfig, GPT2Config, PretrainedConfig

from rrg_bench.baselines.common.vision import IMAGENET_MEAN, IMAGENET_STD, ImageConfig

ATTENTION_MODES = ("soft", "hidden", "none")
#: "all": every query row (image and text) gets the bias on image keys (authors' HEAD, paper text);
#: "image": only image-prefix query rows (pre-516c69d tiled 1024x1024 map, inferred);
#: "legacy_top_left": the 2-D G x G map added to the top-left G x G block (516c69d..d58cec0 bug);
#: "sequence": the authors' later lana_radgen "layerwise" bias: a 32 x 32 map flattened and linearly interpolated over
#: every key of the sequence (image, BOS and text), lower triangle only (LWA@a017e7b:
#: src/lana_radgen/layerwise_anatomical_attention.py:13-62)
BIAS_ROWS = ("all", "image", "legacy_top_left", "sequence")
#: side of the map the "sequence" bias starts from: fixed at 32 whatever the patch grid
#: (LWA@a017e7b:src/lana_radgen/layerwise_anatomical_attention.py:29, 50)
SEQUENCE_MAP_SIZE = 32
#: the image adapter: one Linear (the paper's ``linear_projection.proj``) or lana_radgen's ``mlp4``
#: Linear-GELU-Linear-GELU-Linear-GELU-Linear (LWA@a017e7b:src/lana_radgen/modeling_lana.py:64-77)
ADAPTER_TYPES = ("linear", "mlp4")
#: "lung_heart": binary lung ∪ heart mask (HEAD); "lung_logits": raw lung logits, not thresholded (6a9b81d era)
MASK_SOURCES = ("lung_heart", "lung_logits")
ATTENTION_BACKENDS = ("sdpa", "eager")
#: which generation forward passes get the bias: "every_step" (ours: prefill and every KV-cached decoding step);
#: "prefill_only" (the authors' eager runtime of LAnA-Arxiv: a decoding step's mask is cut to one cell, a
#: constant the softmax ignores, modifiedGPT2.py@5004a62:425-434); "none" (the authors' SDPA ablations: HF
#: builds no mask to add to, so generation is unbiased, modifiedGPT2.py@5004a62:411)
DECODE_BIASES = ("every_step", "prefill_only", "none")
#: switches added with the lana_radgen import, left out of ``config.json`` at these defaults so that every other
#: checkpoint is written byte for byte as before (records name checkpoints by the sha256 of their files)
LATER_DEFAULTS: dict[str, Any] = {"adapter_type": "linear", "start_with_bos": False, "suppress_eos": False}
ImageResample = Literal["bicubic", "lanczos", "bilinear"]
IMAGE_RESAMPLES: tuple[ImageResample, ...] = ("bicubic", "lanczos", "bilinear")


def paper_vision_config() -> DINOv3ViTConfig:
    """DINOv3 ViT-S/16 (`facebook/dinov3-vits16-pretrain-lvd1689m`): the config defaults are ViT-S, but
    the checkpoint has 4 register tokens while the config default is 0."""
    return DINOv3ViTConfig(num_register_tokens=4)


def paper_text_config() -> GPT2Config:
    """GPT-2 small with the position table expanded 1024 -> 2048 (1024 image + 1024 text positions)."""
    return GPT2Config(n_positions=2048)


class AnatAttnConfig(PretrainedConfig):
    model_type = "anat_attn"
    sub_configs = {"vision_config": DINOv3ViTConfig, "text_config": GPT2Config}

    def __init__(
        self,
        vision_config: DINOv3ViTConfig | dict[str, Any] | None = None,
        text_config: GPT2Config | dict[str, Any] | None = None,
        image_size: int = 512,
        prefix_tokens_to_skip: int | None = None,
        attention_mode: str = "soft",
        attention_strength: float = 1.0,
        bias_rows: str = "all",
        mask_source: str = "lung_heart",
        attention_backend: str = "sdpa",
        decode_bias: str = "every_step",
        train_bias: bool = True,
        adapter_type: str = "linear",
        start_with_bos: bool = False,
        suppress_eos: bool = False,
        image_mean: tuple[float, float, float] | list[float] = IMAGENET_MEAN,
        image_std: tuple[float, float, float] | list[float] = IMAGENET_STD,
        image_resample: ImageResample = "bicubic",
        **kwargs: Any,
    ) -> None:
        if isinstance(vision_config, dict):
            vision_config = DINOv3ViTConfig(**vision_config)
        if isinstance(text_config, dict):
            text_config = GPT2Config(**text_config)
        self.vision_config = vision_config if vision_config is not None else paper_vision_config()
        self.text_config = text_config if text_config is not None else paper_text_config()
        self.image_size = int(image_size)
        self.prefix_tokens_to_skip = prefix_tokens_to_skip
        self.attention_mode = attention_mode
        self.attention_strength = float(attention_strength)
        self.bias_rows = bias_rows
        self.mask_source = mask_source
        self.attention_backend = attention_backend
        self.decode_bias = decode_bias
        #: whether teacher-forced passes (training, validation loss) get the bias; the authors' trainers that
        #: kept GPT-2's use_cache=True with SDPA built no mask there, so theirs did not (CARD.md, switches)
        self.train_bias = bool(train_bias)
        self.adapter_type = adapter_type
        #: lana_radgen: the report starts with BOS right after the image prefix, in training (the dataset's
        #: prepend_bos_token) and as the generation prompt (generation_use_bos_token)
        self.start_with_bos = bool(start_with_bos)
        #: lana_radgen's generation_stop_on_eos=False: EOS is suppressed, so every report runs to max_new_tokens
        self.suppress_eos = bool(suppress_eos)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.image_resample = image_resample
        kwargs.setdefault("tie_word_embeddings", getattr(self.text_config, "tie_word_embeddings", True))
        kwargs.setdefault("eos_token_id", self.text_config.eos_token_id)
        kwargs.setdefault("bos_token_id", self.text_config.bos_token_id)
        super().__init__(**kwargs)
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for name, default in LATER_DEFAULTS.items():
            if out.get(name) == default:
                out.pop(name)
        return out

    # ---- derived geometry (never hard-coded: a 512 px / 16 px model has a 32 x 32 grid) ----
    @property
    def patch_size(self) -> int:
        return int(self.vision_config.patch_size)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_image_tokens(self) -> int:
        return self.grid_size * self.grid_size

    @property
    def num_prefix_tokens(self) -> int:
        """Image tokens the decoder sees: the patches, plus the register tokens a model keeps when it skips
        only CLS (lana_radgen: 4 registers + 1024 patches = 1028)."""
        return 1 + int(self.vision_config.num_register_tokens) + self.num_image_tokens - self.tokens_to_skip

    @property
    def prior_grid(self) -> int:
        """Side of the anatomy map the layer maps are blurred at: the patch grid, or 32 for ``sequence``."""
        return SEQUENCE_MAP_SIZE if self.bias_rows == "sequence" else self.grid_size

    @property
    def prior_kind(self) -> str:
        """How a mask becomes that map: min-max then resize (the paper's), or resize then clamp to [0, 1]
        (lana_radgen, layerwise_anatomical_attention.py:29)."""
        return "clamp" if self.bias_rows == "sequence" else "minmax"

    @property
    def tokens_to_skip(self) -> int:
        """CLS + register tokens in front of the patch tokens of DINOv3's last hidden state."""
        if self.prefix_tokens_to_skip is not None:
            return int(self.prefix_tokens_to_skip)
        return 1 + int(self.vision_config.num_register_tokens)

    @property
    def image(self) -> ImageConfig:
        """The preprocessing (size, mean/std, resampling) as the shared image loader takes it."""
        return ImageConfig(size=self.image_size, mean=self.image_mean, std=self.image_std, resample=self.image_resample)

    @property
    def num_decoder_layers(self) -> int:
        return int(self.text_config.n_layer)

    @property
    def max_text_tokens(self) -> int:
        """Text positions left after the image prefix (and the BOS token) in the (interpolated) position table."""
        return int(self.text_config.n_positions) - self.num_prefix_tokens - int(self.start_with_bos)

    def validate(self) -> None:
        """Reject impossible combinations at construction, before any weight is touched."""
        problems = []
        for name, value, allowed in (
            ("attention_mode", self.attention_mode, ATTENTION_MODES),
            ("bias_rows", self.bias_rows, BIAS_ROWS),
            ("mask_source", self.mask_source, MASK_SOURCES),
            ("attention_backend", self.attention_backend, ATTENTION_BACKENDS),
            ("decode_bias", self.decode_bias, DECODE_BIASES),
            ("adapter_type", self.adapter_type, ADAPTER_TYPES),
            ("image_resample", self.image_resample, IMAGE_RESAMPLES),
        ):
            if value not in allowed:
                problems.append(f"{name}={value!r} (allowed: {', '.join(allowed)})")
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if not 0 <= self.tokens_to_skip <= 1 + int(self.vision_config.num_register_tokens):
            problems.append(f"prefix_tokens_to_skip={self.tokens_to_skip}: only CLS and the "
                            f"{self.vision_config.num_register_tokens} register tokens can be skipped")
        if (self.attention_mode != "none" and self.bias_rows != "sequence"
                and self.num_prefix_tokens != self.num_image_tokens):
            problems.append(f"bias_rows={self.bias_rows} puts the map on the first {self.num_image_tokens} prefix "
                            f"tokens, but the prefix keeps {self.num_prefix_tokens - self.num_image_tokens} register "
                            "tokens in front of them; use bias_rows=sequence or skip the registers")
        if self.bias_rows == "sequence" and self.attention_mode == "hidden":
            problems.append("bias_rows=sequence is the authors' soft layerwise bias; it has no hidden variant")
        if self.max_text_tokens < 1:
            problems.append(
                f"decoder n_positions {self.text_config.n_positions} leaves no room for text after "
                f"{self.num_image_tokens} image tokens"
            )
        if self.attention_mode != "none":
            from rrg_bench.baselines.anat_attn.smoothing import max_kernel_size

            pad = max_kernel_size(self.num_decoder_layers) // 2
            if pad >= self.prior_grid:
                problems.append(
                    f"patch grid {self.prior_grid}x{self.prior_grid} is too small for {self.num_decoder_layers} "
                    f"decoder layers: the blur's reflect padding ({pad}) must be smaller than the grid"
                )
        if problems:
            raise ValueError("invalid AnatAttnConfig: " + "; ".join(problems))
