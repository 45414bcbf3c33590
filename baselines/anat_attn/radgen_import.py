"""The authors' later ``lana_radgen`` releases (manu02/LAnA, -MIMIC, -MIMIC-CHEXPERT, -v2 … -v5) -> anat_attn.

LWA = github.com/devMuniz02/layer-wise-anatomical-attention; lines counted in the stored text at a017e7b.

Layout: ``model.safetensors`` is the state dict of ``LanaForConditionalGeneration`` (LWA@a017e7b:
src/lana_radgen/modeling_lana.py:85-157): ``vision_encoder.*`` = DINOv3ViTModel (:105/107), ``text_decoder.*`` =
GPT-2 built by ``create_decoder`` (:121-128) with ``tie_word_embeddings = False``, so ``text_decoder.lm_head.weight``
is a weight of its own, ``visual_projection.*`` = one Linear or the 4-Linear ``mlp4`` (:64-77, :151), and
``segmenter.{lung_model,heart_model}.*`` (segmenters.py:18-89; the published config sets
``segmenter_weights_in_model_state``, src/lana_radgen/hub.py ``_patch_config_for_hf``). The tests' fixture
tests/fixtures/lana/radgen_layout.py lists every key with its source line.

Mechanism, from the release's ``config.json`` (defaults: configuration_lana.py:28-64):

* prefix: DINOv3 tokens after ``vision_feature_prefix_tokens_to_skip`` (default 1: CLS only, so the 4 registers stay
  in the prefix; modeling_lana.py ``_encode_images``), then BOS (``generation_use_bos_token``, default true; training
  prepends it too, data/datasets.py ``_tokenize_report``);
* bias (``attention_bias_mode="layerwise"``): lung ∪ heart, resized to 32 x 32 and clamped, blurred per layer,
  min-max, flattened and interpolated over the whole sequence, ``tril``, times ``anatomical_attention_bias`` (2.0)
  (layerwise_anatomical_attention.py:13-62) -> ``bias_rows="sequence"``;
* where it lands: ``GPT2ModelModified.forward`` adds it to the mask ``create_causal_mask`` returns, and only when
  that mask is not None (gpt2_modified.py, the block loop). With ``segmentation_attention_implementation="sdpa"``
  (the default, and what the released LAnA config says) that mask is None for an unpadded batch and for every
  ``generate`` step, and a *boolean* mask for a padded batch, to which ``+ bias.to(bool)`` adds nothing on any real
  token (the bias is zero above the diagonal, and below it every real key is already allowed). Checked here with
  transformers 4.57.6 and 5.3.0 (the version the released config names): the bias never reaches the attention of
  a real token, in training or generation -> ``decode_bias="none"``. With ``"eager"`` the mask is a float one: the
  bias applies at the prefill, and a KV-cached step cuts the mask to one cell, a constant the softmax ignores ->
  ``decode_bias="prefill_only"``;
* training: ``scripts/train.py`` (LWA@bf3e275, ``build_mimic_manifest`` / ``build_chexpert_manifest``) gives the
  dataset no ``processed_mask_path``, so every training mask is all ones (data/datasets.py ``_load_mask``), and
  the layerwise bias of a constant map is exactly zero (its min-max) -> ``train_bias=false`` whatever the backend;
* decoding: ``generation_stop_on_eos`` (default false) -> EOS suppressed (``suppress_eos``);
  ``generation_repetition_penalty`` (default 1.0) and ``max_new_tokens=150`` are the generator's params here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rrg_bench.baselines.anat_attn.configuration import AnatAttnConfig
from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration
from rrg_bench.errors import DataError

LAYOUT = "lana_radgen"
PREFIXES = ("vision_encoder.", "text_decoder.", "visual_projection.")
#: the pad token LanaForConditionalGeneration adds when the vocabulary has room (modeling_lana.py:17, 133-139)
PAD_TOKEN = "<|pad|>"
#: release config fields that decide the import, with the defaults of configuration_lana.py:28-64
SETTINGS: dict[str, Any] = {
    "attention_bias_mode": "layerwise", "anatomical_attention_bias": 2.0,
    "segmentation_attention_implementation": "sdpa", "use_segmentation_mask": True,
    "layer_mask_base_kernel_size": 3, "layer_mask_kernel_growth": 2, "vision_feature_prefix_tokens_to_skip": 1,
    "generation_use_bos_token": True, "generation_stop_on_eos": False, "generation_repetition_penalty": 1.0,
    "image_size": 512,
}


def is_radgen(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(PREFIXES) for k in state)


def release_settings(package: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``SETTINGS`` as the release's config.json sets them (defaults otherwise)."""
    return {name: package.get(name, default) for name, default in SETTINGS.items()}


def mechanism(settings: dict[str, Any]) -> dict[str, Any]:
    """Our switches for a release's settings; a setting we do not reproduce is a DataError naming it."""
    if settings["attention_bias_mode"] != "layerwise":
        raise DataError(f"lana_radgen attention_bias_mode={settings['attention_bias_mode']!r}: only 'layerwise' "
                        "(the default) is reproduced (bias_rows=sequence)")
    if (settings["layer_mask_base_kernel_size"], settings["layer_mask_kernel_growth"]) != (3, 2):
        raise DataError("lana_radgen blur kernels other than base 3, growth 2 are not reproduced")
    backend = settings["segmentation_attention_implementation"]
    if backend not in ("sdpa", "eager"):
        raise DataError(f"lana_radgen segmentation_attention_implementation={backend!r}: only sdpa and eager are "
                        "reproduced")
    out: dict[str, Any] = dict(
        prefix_tokens_to_skip=int(settings["vision_feature_prefix_tokens_to_skip"]),
        start_with_bos=bool(settings["generation_use_bos_token"]),
        suppress_eos=not settings["generation_stop_on_eos"],
        image_size=int(settings["image_size"]),
    )
    if not settings["use_segmentation_mask"]:
        return {**out, "attention_mode": "none"}
    # sdpa: HF builds no float mask to add the bias to; training masks were all ones (module docstring)
    return {**out, "attention_mode": "soft", "bias_rows": "sequence", "mask_source": "lung_heart",
            "attention_strength": float(settings["anatomical_attention_bias"]), "train_bias": False,
            "decode_bias": "prefill_only" if backend == "eager" else "none"}


def package_config(home: Path) -> dict[str, Any]:
    """The release's config.json: at the repo root (src/lana_radgen/hub.py ``_build_hf_package``) or, in older
    uploads, under ``model/``."""
    for path in (Path(home) / "config.json", Path(home) / "model" / "config.json"):
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except ValueError:
                raise DataError(f"{path}: not readable JSON") from None
    return {}


def convert_radgen(state: dict[str, torch.Tensor], *, settings: dict[str, Any] | None = None,
                   vision_heads: int | None = None, decoder_heads: int | None = None, eos_token_id: int = 50256,
                   **overrides: Any) -> Any:
    """The release's state dict -> ``importer.Converted``; strict as the legacy import (every source tensor
    placed, every weight of ours filled, else a DataError listing the keys). ``overrides`` win over the
    mechanism the settings give."""
    from rrg_bench.baselines.anat_attn import importer as legacy

    vision = legacy._strip(state, "vision_encoder.")
    decoder = legacy._strip(state, "text_decoder.transformer.")
    projection = legacy._strip(state, "visual_projection.")
    absent = [name for name, part in (("vision_encoder.*", vision), ("text_decoder.transformer.*", decoder),
                                      ("visual_projection.*", projection)) if not part]
    if "text_decoder.lm_head.weight" not in state:
        absent.append("text_decoder.lm_head.weight")
    if absent:
        raise DataError(f"not the lana_radgen layout: no {', '.join(absent)} keys")
    adapter_type = "linear" if "weight" in projection else "mlp4" if "0.weight" in projection else None
    if adapter_type is None:
        raise DataError(f"lana_radgen visual_projection keys {sorted(projection)[:6]}: neither linear nor mlp4")
    report = legacy.ImportReport(LAYOUT, len(state))
    report.ignored_buffers = sorted(k for k in state if k.startswith("text_decoder.transformer.")
                                    and k.endswith(legacy._BUFFER_SUFFIXES))
    decoder = {k: v for k, v in decoder.items() if not k.endswith(legacy._BUFFER_SUFFIXES)}
    text_config = legacy.infer_text_config(decoder, decoder_heads, bos_token_id=eos_token_id,
                                           eos_token_id=eos_token_id, tie_word_embeddings=False)
    config = AnatAttnConfig(vision_config=legacy.infer_vision_config(vision, vision_heads).to_dict(),
                            text_config=text_config.to_dict(), adapter_type=adapter_type, tie_word_embeddings=False,
                            **{**mechanism(release_settings(settings or {})), **overrides})
    model = AnatAttnForReportGeneration(config)
    legacy._load_strict(model.vision_encoder, vision, "vision_encoder.", report)
    legacy._load_strict(model.decoder, decoder, "decoder.", report)
    legacy._load_strict(model.adapter, projection, "adapter.", report)
    legacy._load_strict(model.lm_head, {"weight": state["text_decoder.lm_head.weight"]}, "lm_head.", report)
    consumed = {f"vision_encoder.{k}" for k in vision} | {f"visual_projection.{k}" for k in projection}
    consumed |= {f"text_decoder.transformer.{k}" for k in decoder} | set(report.ignored_buffers)
    consumed.add("text_decoder.lm_head.weight")
    segmenters = {}
    if any(k.startswith("segmenter.") for k in state):
        segmenters = legacy.load_segmenters(state, "heart_lung", report, consumed, name_missing=True)
    return legacy.strictly_converted(LAYOUT, model, segmenters, state, consumed, report)


def radgen_tokenizer(home: Path, vocab_rows: int) -> Any:
    """GPT-2's tokenizer from the release's ``vocab.json`` + ``merges.txt``, with the authors' pad rule: a
    ``<|pad|>`` token when the embedding has one row more than the vocabulary, else pad = eos
    (modeling_lana.py:133-139)."""
    from rrg_bench.baselines.anat_attn.importer import legacy_tokenizer

    tokenizer = legacy_tokenizer(home)
    if vocab_rows == len(tokenizer) + 1:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    if vocab_rows != len(tokenizer):
        raise DataError(f"the decoder has {vocab_rows} token rows, the release's tokenizer {len(tokenizer)} tokens")
    return tokenizer


def import_radgen(state: dict[str, torch.Tensor], home: Path, out_dir: Path, *, tokenizer_dir: Path | None = None,
                  **kwargs: Any) -> Path:
    """Write an anat_attn checkpoint directory from a release's state dict (``import.json`` records the layout,
    the empty missing/unexpected lists and the release settings it was imported with)."""
    from rrg_bench.baselines.anat_attn.importer import IMPORTER_VERSION
    from rrg_bench.baselines.anat_attn.loading import save_checkpoint

    settings = release_settings(package_config(home))
    if "image_size" in kwargs:
        settings["image_size"] = kwargs.pop("image_size")
    wte = state.get("text_decoder.transformer.wte.weight")
    rows = int(wte.shape[0]) if wte is not None else 0
    tokenizer = radgen_tokenizer(Path(tokenizer_dir) if tokenizer_dir else home, rows)
    converted = convert_radgen(state, settings=settings, eos_token_id=tokenizer.eos_token_id, **kwargs)
    model = converted.model
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.needs_masks and set(converted.segmenters) != {"lung", "heart"}:
        raise DataError("the lana_radgen bias is built from lung ∪ heart; the checkpoint holds segmenters "
                        f"{sorted(converted.segmenters)}")
    out = save_checkpoint(model, tokenizer, Path(out_dir), converted.segmenters)
    (out / "import.json").write_text(json.dumps({"importer_version": IMPORTER_VERSION, **vars(converted.report),
                                                 "release_settings": settings}, indent=1, sort_keys=True))
    return out
