"""Convert the authors' legacy LAnA checkpoint (``arxiv_paper_model.pth``) into an anat_attn directory.

Known layout (reference/models.md §1.9; the authors' ``CustomModel`` state dict, optionally wrapped
in ``{"model_state_dict": ...}``): ``encoder.model.*`` = DINOv3ViTModel, ``linear_projection.proj.*``
= the adapter, ``decoder.transformer.*`` + ``decoder.lm_head.weight`` = GPT-2 with a 2048-row
position table, and one or more segmenters ``<prefix>encoder.*`` (DINOv3 ConvNeXt),
``<prefix>channel_adapter.*``, ``<prefix>decoder.{0,2,4,6}.*``. Configs are inferred from tensor
shapes; head counts cannot be (they default to width / 64, true for ViT-S and GPT-2 small).

The paper checkpoint (``cloud_best_model_7``) was evaluated with the pre-516c69d code: hidden mode,
lung *logits* smoothed (no heart), a map tiled over the 1024 image rows — hence the defaults
``attention_mode=hidden, mask_source=lung_logits, bias_rows=image`` (the last is inferred from the
tile shape, see CARD.md). Only the mapping logic is tested here, on synthetic state dicts with this
layout; the real file has not been available to us.

Usage: ``python -m rrg_bench.baselines.anat_attn.importer arxiv_paper_model.pth OUT_DIR --tokenizer GPT2_TOKENIZER_DIR``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, DINOv3ConvNextConfig, DINOv3ViTConfig, GPT2Config

from rrg_bench.baselines.anat_attn.configuration import AnatAttnConfig
from rrg_bench.baselines.anat_attn.loading import save_checkpoint
from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration
from rrg_bench.baselines.anat_attn.segmenter import AnatSegmenter, AnatSegmenterConfig
from rrg_bench.errors import DataError, UsageError

LEGACY_WEIGHT_NAMES = ("arxiv_paper_model.pth", "arxiv_paper_model.safetensors")
ARXIV_MECHANISM = dict(attention_mode="hidden", mask_source="lung_logits", bias_rows="image")
_SEGMENTER_HEAD = {"decoder.0.": "head.0.", "decoder.2.": "head.2.", "decoder.4.": "head.4.", "decoder.6.": "head.6."}


def load_legacy_state_dict(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in LEGACY_WEIGHT_NAMES if (path / n).is_file()]
        if not found:
            raise DataError(f"{path}: none of {', '.join(LEGACY_WEIGHT_NAMES)} found")
        path = found[0]
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("model_state_dict", "state_dict"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: not a state dict of tensors")
    return state


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_vision_config(state: dict[str, torch.Tensor], num_heads: int | None = None) -> DINOv3ViTConfig:
    patch = state["embeddings.patch_embeddings.weight"]
    hidden = patch.shape[0]
    return DINOv3ViTConfig(
        hidden_size=hidden,
        patch_size=patch.shape[-1],
        num_channels=patch.shape[1],
        num_hidden_layers=_count(state, r"layer\.(\d+)\."),
        num_attention_heads=num_heads or max(1, hidden // 64),
        intermediate_size=state["layer.0.mlp.up_proj.weight"].shape[0],
        num_register_tokens=state["embeddings.register_tokens"].shape[1] if "embeddings.register_tokens" in state else 0,
        use_gated_mlp="layer.0.mlp.gate_proj.weight" in state,
        query_bias="layer.0.attention.q_proj.bias" in state,
        key_bias="layer.0.attention.k_proj.bias" in state,
        value_bias="layer.0.attention.v_proj.bias" in state,
        proj_bias="layer.0.attention.o_proj.bias" in state,
        mlp_bias="layer.0.mlp.up_proj.bias" in state,
    )


def infer_text_config(state: dict[str, torch.Tensor], num_heads: int | None = None, **token_ids: Any) -> GPT2Config:
    vocab, hidden = state["wte.weight"].shape
    return GPT2Config(
        vocab_size=vocab,
        n_embd=hidden,
        n_positions=state["wpe.weight"].shape[0],
        n_layer=_count(state, r"h\.(\d+)\."),
        n_head=num_heads or max(1, hidden // 64),
        n_inner=state["h.0.mlp.c_fc.weight"].shape[1],
        **token_ids,
    )


def infer_segmenter_config(state: dict[str, torch.Tensor]) -> AnatSegmenterConfig:
    """``state`` uses our names (backbone./channel_adapter./head.)."""
    stages = _count(state, r"backbone\.stages\.(\d+)\.")
    hidden = [state[f"backbone.stages.{i}.layers.0.depthwise_conv.weight"].shape[0] for i in range(stages)]
    depths = [_count(state, rf"backbone\.stages\.{i}\.layers\.(\d+)\.") for i in range(stages)]
    classes = state["head.6.weight"].shape[0]
    make = AnatSegmenterConfig.lung if classes == 1 else AnatSegmenterConfig.heart
    if classes not in (1, 3):
        raise DataError(f"segmenter with {classes} output classes: expected 1 (lung) or 3 (heart)")
    return make(
        backbone_config=DINOv3ConvNextConfig(hidden_sizes=hidden, depths=depths),
        adapter_channels=state["channel_adapter.weight"].shape[0],
        head_channels=[state["head.0.weight"].shape[0], state["head.2.weight"].shape[1], state["head.4.weight"].shape[1]],
    )


def legacy_segmenters(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{"lung"|"heart": our-named state}`` for every ``<prefix>channel_adapter.weight`` found."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key in sorted(state):
        if not key.endswith("channel_adapter.weight"):
            continue
        prefix = key[: -len("channel_adapter.weight")]
        part = _strip(state, prefix)
        mapped: dict[str, torch.Tensor] = {}
        for k, v in part.items():
            if k.startswith("encoder."):
                mapped["backbone." + k[len("encoder.") :]] = v
            elif k.startswith("channel_adapter."):
                mapped[k] = v
            else:
                for old, new in _SEGMENTER_HEAD.items():
                    if k.startswith(old):
                        mapped[new + k[len(old) :]] = v
        role = "lung" if mapped["head.6.weight"].shape[0] == 1 else "heart"
        if role in out:
            raise DataError(f"two {role} segmenters in the checkpoint (prefix {prefix!r})")
        out[role] = mapped
    return out


def convert(
    state: dict[str, torch.Tensor],
    *,
    image_size: int = 512,
    vision_heads: int | None = None,
    decoder_heads: int | None = None,
    eos_token_id: int = 50256,
    **mechanism: Any,
) -> tuple[AnatAttnForReportGeneration, dict[str, AnatSegmenter]]:
    vision_state = _strip(state, "encoder.model.")
    decoder_state = {k: v for k, v in _strip(state, "decoder.transformer.").items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    adapter_state = _strip(state, "linear_projection.proj.")
    missing = [name for name, part in (("encoder.model.*", vision_state), ("decoder.transformer.*", decoder_state),
                                       ("linear_projection.proj.*", adapter_state)) if not part]
    if missing:
        raise DataError(f"not the LAnA legacy layout: no {', '.join(missing)} keys")
    config = AnatAttnConfig(
        vision_config=infer_vision_config(vision_state, vision_heads).to_dict(),
        text_config=infer_text_config(
            decoder_state, decoder_heads, bos_token_id=eos_token_id, eos_token_id=eos_token_id
        ).to_dict(),
        image_size=image_size,
        **{**ARXIV_MECHANISM, **mechanism},
    )
    model = AnatAttnForReportGeneration(config)
    model.vision_encoder.load_state_dict(vision_state)
    model.decoder.load_state_dict(decoder_state)
    model.adapter.load_state_dict(adapter_state)
    if "decoder.lm_head.weight" in state and not torch.equal(state["decoder.lm_head.weight"], decoder_state["wte.weight"]):
        raise DataError("decoder.lm_head.weight differs from the token embeddings; expected tied GPT-2 weights")
    model.tie_weights()
    segmenters = {}
    for role, seg_state in legacy_segmenters(state).items():
        seg = AnatSegmenter(infer_segmenter_config(seg_state))
        seg.load_state_dict(seg_state)
        segmenters[role] = seg.eval()
    return model.eval(), segmenters


def import_lana_arxiv(
    source: Path | str,
    out_dir: Path | str,
    *,
    tokenizer_dir: Path | str | None = None,
    **kwargs: Any,
) -> Path:
    """Write an anat_attn checkpoint directory (model, tokenizer, segmenters/) from the legacy file."""
    source = Path(source)
    tokenizer_src = Path(tokenizer_dir) if tokenizer_dir else (source if source.is_dir() else source.parent)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_src)
    except (OSError, ValueError):
        raise UsageError(
            f"no GPT-2 tokenizer files in {tokenizer_src}; pass --tokenizer DIR (the LAnA-Arxiv repo ships them)"
        ) from None
    model, segmenters = convert(load_legacy_state_dict(source), eos_token_id=tokenizer.eos_token_id, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.config.mask_source == "lung_heart" and "heart" not in segmenters:
        raise DataError("mask_source=lung_heart needs a heart segmenter, and the checkpoint holds none")
    return save_checkpoint(model, tokenizer, Path(out_dir), segmenters)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="arxiv_paper_model.pth (or the directory holding it)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--tokenizer", type=Path, default=None, help="directory with GPT-2 tokenizer files")
    parser.add_argument("--attention-mode", choices=["soft", "hidden", "none"], default=ARXIV_MECHANISM["attention_mode"])
    parser.add_argument("--mask-source", choices=["lung_heart", "lung_logits"], default=ARXIV_MECHANISM["mask_source"])
    parser.add_argument("--bias-rows", choices=["all", "image", "legacy_top_left"], default=ARXIV_MECHANISM["bias_rows"])
    parser.add_argument("--image-size", type=int, default=512)
    args = parser.parse_args(argv)
    out = import_lana_arxiv(
        args.source, args.out_dir, tokenizer_dir=args.tokenizer, image_size=args.image_size,
        attention_mode=args.attention_mode, mask_source=args.mask_source, bias_rows=args.bias_rows,
    )
    print(f"checkpoint: {out}")


if __name__ == "__main__":
    main()
