"""Convert the authors' released LAnA checkpoints into an anat_attn directory, loading every tensor strictly, with
the mechanism each checkpoint was trained and generates with: the legacy ``arxiv_paper_model.pth`` of
manu02/LAnA-Arxiv (below) and the later ``lana_radgen`` releases (``model.safetensors`` of manu02/LAnA, -MIMIC,
-MIMIC-CHEXPERT, -v2 … -v5; ``radgen_import``).

The file is the state dict of the authors' ``CustomModel`` (optionally wrapped in ``{"model_state_dict": ...}``):
``encoder.model.*`` = DINOv3ViTModel, ``linear_projection.proj.*`` = the adapter, ``decoder.transformer.*`` +
``decoder.lm_head.weight`` = GPT-2 with a 2048-row position table, and the segmenters in one of two layouts
(the fixture tests/fixtures/lana/legacy_layouts.json cites the authors' lines):

* ``lung_only`` (UDEM 0b281e7/811ccbe era): ``segmenter.{encoder,channel_adapter,decoder}.*``, raw lung logits
  blurred and tiled over the 1024 image rows;
* ``heart_lung`` (from 516c69d): ``segmenter.lung_model.{encoder,channel_adapter,decoder}.*`` and
  ``segmenter.heart_model.{encoder,adapter,decoder}.*`` (the heart model names its 1x1 layer ``adapter``),
  binary lung ∪ heart.

Which one ``arxiv_paper_model.pth`` is could not be learned without the file; both import. Both run as the
authors' packaged runtime runs them (modeling_lana_arxiv.py@a017e7b:64: eager attention, default soft mode):
the bias on the prefill and none on KV-cached decoding steps (``decode_bias=prefill_only``). At the prefill only
image rows exist, so ``bias_rows`` image and all give the same reports. The later ``lana_radgen`` releases
(``vision_encoder.*``, ``text_decoder.*``) have their own layout and bias (``bias_rows=sequence``); see
``radgen_import``.

Configs are inferred from tensor shapes; head counts cannot be (they default to width / 64, true for ViT-S and
GPT-2 small). Usage: ``python -m rrg_bench.baselines.anat_attn.importer arxiv_paper_model.pth OUT_DIR``
(the tokenizer is read from ``vocab.json`` + ``merges.txt`` beside the file, or ``--tokenizer DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import DINOv3ConvNextConfig, DINOv3ViTConfig, GPT2Config

from rrg_bench.baselines.anat_attn.configuration import AnatAttnConfig
from rrg_bench.baselines.anat_attn.loading import save_checkpoint
from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration
from rrg_bench.baselines.anat_attn.segmenter import AnatSegmenter, AnatSegmenterConfig
from rrg_bench.errors import BenchError, DataError, UsageError

LEGACY_WEIGHT_NAMES = ("arxiv_paper_model.pth", "arxiv_paper_model.safetensors", "model.safetensors")
#: bumped whenever an import of the same file would give a different directory (the import cache is keyed by it)
IMPORTER_VERSION = 2
#: (prefix, name of the 1x1 adapter) of each segmenter role, per layout
SEGMENTER_LAYOUTS: dict[str, dict[str, tuple[str, str]]] = {
    "lung_only": {"lung": ("segmenter.", "channel_adapter.")},
    "heart_lung": {"lung": ("segmenter.lung_model.", "channel_adapter."),
                   "heart": ("segmenter.heart_model.", "adapter.")},
    "no_segmenter": {},
}
#: how each layout generates in the authors' packaged runtime (see the module docstring and CARD.md)
LAYOUT_MECHANISMS: dict[str, dict[str, Any]] = {
    "lung_only": dict(attention_mode="soft", mask_source="lung_logits", bias_rows="image", decode_bias="prefill_only"),
    "heart_lung": dict(attention_mode="soft", mask_source="lung_heart", bias_rows="all", decode_bias="prefill_only"),
    "no_segmenter": dict(attention_mode="none"),
}
#: GPT-2's causal-mask buffers some transformers versions saved: constants, not weights
_BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias")
_SEGMENTER_HEAD = {"decoder.0.": "head.0.", "decoder.2.": "head.2.", "decoder.4.": "head.4.", "decoder.6.": "head.6."}


@dataclass
class ImportReport:
    """What an import read: the layout, how many source tensors, and the keys that did not fit (always
    empty for a successful import: anything left over is an error)."""

    layout: str
    source_keys: int
    ignored_buffers: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


@dataclass
class Converted:
    model: AnatAttnForReportGeneration
    segmenters: dict[str, AnatSegmenter]
    report: ImportReport


def load_legacy_state_dict(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in LEGACY_WEIGHT_NAMES if (path / n).is_file()]
        if not found:
            raise DataError(f"{path}: none of {', '.join(LEGACY_WEIGHT_NAMES)} found")
        path = found[0]
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle holding more than tensors, a torn download, a corrupt safetensors header
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]  # torch's own advice runs to many lines
        raise DataError(f"{path}: not loadable as a tensor state dict ({type(exc).__name__}: {first_line}); "
                        "fetch it again (`bench weights fetch NAME`) or check the file") from None
    for wrapper in ("model_state_dict", "state_dict"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: not a state dict of tensors")
    return state


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """``lung_only``, ``heart_lung``, ``no_segmenter`` or ``lana_radgen``; other layouts are a DataError saying
    why."""
    from rrg_bench.baselines.anat_attn.radgen_import import LAYOUT, is_radgen

    if is_radgen(state):
        return LAYOUT
    if "segmenter.heart_model.adapter.weight" in state and "segmenter.lung_model.channel_adapter.weight" in state:
        return "heart_lung"
    if "segmenter.channel_adapter.weight" in state:
        return "lung_only"
    if any(k.startswith("segmenter.") for k in state):
        raise DataError("segmenter keys in an unknown layout (expected segmenter.channel_adapter.* or "
                        "segmenter.{lung_model.channel_adapter,heart_model.adapter}.*)")
    return "no_segmenter"


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
        num_register_tokens=(
            state["embeddings.register_tokens"].shape[1] if "embeddings.register_tokens" in state else 0
        ),
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
    if classes not in (1, 3):
        raise DataError(f"segmenter with {classes} output classes: expected 1 (lung) or 3 (heart)")
    make = AnatSegmenterConfig.lung if classes == 1 else AnatSegmenterConfig.heart
    return make(
        backbone_config=DINOv3ConvNextConfig(hidden_sizes=hidden, depths=depths),
        adapter_channels=state["channel_adapter.weight"].shape[0],
        head_channels=[
            state["head.0.weight"].shape[0], state["head.2.weight"].shape[1], state["head.4.weight"].shape[1]
        ],
    )


def _segmenter_state(state: dict[str, torch.Tensor], prefix: str, adapter: str) -> dict[str, str]:
    """{our name: source key} of one segmenter; keys under ``prefix`` that fit no part are left out (and
    reported as unexpected by the caller)."""
    out = {}
    for key in state:
        if not key.startswith(prefix):
            continue
        k = key[len(prefix) :]
        if k.startswith("encoder."):
            out["backbone." + k[len("encoder.") :]] = key
        elif k.startswith(adapter):
            out["channel_adapter." + k[len(adapter) :]] = key
        else:
            for old, new in _SEGMENTER_HEAD.items():
                if k.startswith(old):
                    out[new + k[len(old) :]] = key
    return out


def _load_strict(module: torch.nn.Module, part: dict[str, torch.Tensor], where: str, report: ImportReport) -> None:
    result = module.load_state_dict(part, strict=False)
    report.missing += [f"{where}{k}" for k in result.missing_keys]
    report.unexpected += [f"{where}{k}" for k in result.unexpected_keys]


def convert(
    state: dict[str, torch.Tensor],
    *,
    image_size: int = 512,
    vision_heads: int | None = None,
    decoder_heads: int | None = None,
    eos_token_id: int = 50256,
    **mechanism: Any,
) -> Converted:
    """The authors' state dict -> our model + segmenters; every source tensor must find its place and every
    weight of ours must be filled (a DataError lists what did not). ``mechanism`` overrides the layout's."""
    layout = detect_layout(state)
    if layout == "lana_radgen":
        from rrg_bench.baselines.anat_attn.radgen_import import convert_radgen

        return convert_radgen(state, settings={"image_size": image_size}, vision_heads=vision_heads,
                              decoder_heads=decoder_heads, eos_token_id=eos_token_id, **mechanism)
    vision_state = _strip(state, "encoder.model.")
    decoder_state = _strip(state, "decoder.transformer.")
    adapter_state = _strip(state, "linear_projection.proj.")
    absent = [name for name, part in (("encoder.model.*", vision_state), ("decoder.transformer.*", decoder_state),
                                      ("linear_projection.proj.*", adapter_state)) if not part]
    if absent:
        raise DataError(f"not the LAnA legacy layout: no {', '.join(absent)} keys")
    report = ImportReport(layout, len(state))
    report.ignored_buffers = sorted(k for k in state if k.startswith("decoder.transformer.")
                                    and k.endswith(_BUFFER_SUFFIXES))
    decoder_state = {k: v for k, v in decoder_state.items() if not k.endswith(_BUFFER_SUFFIXES)}
    config = AnatAttnConfig(
        vision_config=infer_vision_config(vision_state, vision_heads).to_dict(),
        text_config=infer_text_config(decoder_state, decoder_heads, bos_token_id=eos_token_id,
                                      eos_token_id=eos_token_id).to_dict(),
        image_size=image_size,
        **{**LAYOUT_MECHANISMS[layout], **mechanism},
    )
    model = AnatAttnForReportGeneration(config)
    consumed = {f"encoder.model.{k}" for k in vision_state} | {f"linear_projection.proj.{k}" for k in adapter_state}
    consumed |= {f"decoder.transformer.{k}" for k in decoder_state} | set(report.ignored_buffers)
    _load_strict(model.vision_encoder, vision_state, "vision_encoder.", report)
    _load_strict(model.decoder, decoder_state, "decoder.", report)
    _load_strict(model.adapter, adapter_state, "adapter.", report)
    if "decoder.lm_head.weight" in state:
        head, embeddings = state["decoder.lm_head.weight"], decoder_state["wte.weight"]
        tied = head.shape == embeddings.shape and (head.is_meta or torch.equal(head, embeddings))  # meta: shapes only
        if not tied:
            raise DataError("decoder.lm_head.weight differs from the token embeddings; expected tied GPT-2 weights")
        consumed.add("decoder.lm_head.weight")
    model.tie_weights()
    segmenters = load_segmenters(state, layout, report, consumed)
    return strictly_converted(layout, model, segmenters, state, consumed, report)


def load_segmenters(state: dict[str, torch.Tensor], layout: str, report: ImportReport, consumed: set[str], *,
                    name_missing: bool = False) -> dict[str, AnatSegmenter]:
    """The layout's segmenters, each loaded strictly, their source keys added to ``consumed``. With
    ``name_missing`` a role whose keys are absent is reported missing (a release must carry both)."""
    segmenters = {}
    for role, (prefix, adapter) in SEGMENTER_LAYOUTS[layout].items():
        names = _segmenter_state(state, prefix, adapter)
        if name_missing and not names:
            report.missing.append(f"segmenters/{role}/ ({prefix}*)")
            continue
        part = {ours: state[key] for ours, key in names.items()}
        seg = AnatSegmenter(infer_segmenter_config(part))
        _load_strict(seg, part, f"segmenters/{role}/", report)
        consumed |= set(names.values())
        segmenters[role] = seg.eval()
    return segmenters


def strictly_converted(layout: str, model: AnatAttnForReportGeneration, segmenters: dict[str, AnatSegmenter],
                       state: dict[str, torch.Tensor], consumed: set[str], report: ImportReport) -> Converted:
    """The conversion, only if every source tensor found its place and every weight of ours was filled."""
    report.unexpected += sorted(set(state) - consumed)
    if report.missing or report.unexpected:
        raise DataError(f"{layout} checkpoint does not load strictly: missing {report.missing[:8]}, "
                        f"unexpected {report.unexpected[:8]}")
    return Converted(model.eval(), segmenters, report)


def legacy_tokenizer(directory: Path) -> Any:
    """GPT-2's byte-level BPE from ``vocab.json`` + ``merges.txt`` (what the LAnA-Arxiv repo ships), with
    pad = eos as the authors set it."""
    from transformers import GPT2TokenizerFast

    vocab, merges = Path(directory) / "vocab.json", Path(directory) / "merges.txt"
    if not (vocab.is_file() and merges.is_file()):
        raise UsageError(f"no GPT-2 tokenizer (vocab.json, merges.txt) in {directory}; pass --tokenizer DIR "
                         "(the LAnA-Arxiv repo ships them)")
    tokenizer = GPT2TokenizerFast(vocab_file=str(vocab), merges_file=str(merges))
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _package_config(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        raise DataError(f"{path}: not readable JSON") from None


def import_lana_arxiv(source: Path | str, out_dir: Path | str, *, tokenizer_dir: Path | str | None = None,
                      **kwargs: Any) -> Path:
    """Write an anat_attn checkpoint directory (model, tokenizer, segmenters/, ``import.json``) from a released
    file: the legacy one, or a lana_radgen ``model.safetensors`` (``radgen_import.import_radgen``). The image size
    comes from the package's ``config.json`` when ``image_size`` is not given."""
    source = Path(source)
    home = source if source.is_dir() else source.parent
    state = load_legacy_state_dict(source)
    if detect_layout(state) == "lana_radgen":  # a layout we cannot import says so before anything else
        from rrg_bench.baselines.anat_attn.radgen_import import import_radgen

        return import_radgen(state, home, Path(out_dir), tokenizer_dir=Path(tokenizer_dir) if tokenizer_dir else None,
                             **kwargs)
    package = _package_config(home)
    skip = package.get("vision_feature_prefix_tokens_to_skip")
    kwargs.setdefault("image_size", int(package.get("image_size", 512)))
    tokenizer = legacy_tokenizer(Path(tokenizer_dir) if tokenizer_dir else home)
    converted = convert(state, eos_token_id=tokenizer.eos_token_id, **kwargs)
    model = converted.model
    if skip is not None and int(skip) != model.config.tokens_to_skip:
        raise DataError(f"{home / 'config.json'} skips {skip} prefix tokens; the encoder in the weights has "
                        f"{model.config.tokens_to_skip} (CLS + registers)")
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.config.mask_source == "lung_heart" and model.needs_masks and "heart" not in converted.segmenters:
        raise DataError("mask_source=lung_heart needs a heart segmenter, and the checkpoint holds none")
    out = save_checkpoint(model, tokenizer, Path(out_dir), converted.segmenters)
    (out / "import.json").write_text(json.dumps({"importer_version": IMPORTER_VERSION, **vars(converted.report)},
                                                indent=1, sort_keys=True))
    return out


def import_cached(name: str = "lana-arxiv") -> tuple[Path, dict[str, Any]]:
    """The registered weights ``name`` (``bench weights fetch NAME``), imported once into the cache:
    (our checkpoint directory, where it came from: repo, revision, sha256 of the source files). Missing
    weights raise ``WeightsUnavailable`` with the fetch command."""
    from rrg_bench import weights
    from rrg_bench.hashing import sha256_file_memo
    from rrg_bench.paths import cache_root
    from rrg_bench.weights.locate import read_sidecar

    spec = weights.spec(name)
    if spec.marker is None:
        raise UsageError(f"anat_attn: weights entry {name!r} names no checkpoint file to import")
    home = weights.resolve(name)
    hashes = {f: sha256_file_memo(home / f) for f in spec.files if (home / f).is_file()}
    side = read_sidecar(name) or {}
    source = {"weights": name, "repo_id": spec.repo_id, "revision": side.get("revision", spec.revision or "unknown"),
              "files_sha256": hashes, "importer_version": IMPORTER_VERSION}
    target = cache_root() / "anat_attn" / "imported" / f"{name}-{hashes[spec.marker][:16]}-v{IMPORTER_VERSION}"
    if not (target / "import.json").is_file():
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        import_lana_arxiv(home / spec.marker, tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target, source


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="arxiv_paper_model.pth or a lana_radgen model.safetensors "
                                                  "(or the directory holding it)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--tokenizer", type=Path, default=None, help="directory with vocab.json + merges.txt")
    parser.add_argument("--attention-mode", choices=["soft", "hidden", "none"], default=None)
    parser.add_argument("--mask-source", choices=["lung_heart", "lung_logits"], default=None)
    parser.add_argument("--bias-rows", choices=["all", "image", "legacy_top_left", "sequence"], default=None)
    parser.add_argument("--decode-bias", choices=["every_step", "prefill_only", "none"], default=None)
    parser.add_argument("--image-size", type=int, default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("attention_mode", args.attention_mode), ("mask_source", args.mask_source),
                                   ("bias_rows", args.bias_rows), ("decode_bias", args.decode_bias),
                                   ("image_size", args.image_size)) if v is not None}
    try:
        out = import_lana_arxiv(args.source, args.out_dir, tokenizer_dir=args.tokenizer, **overrides)
    except BenchError as exc:  # one line naming the file and what to do, as the bench commands print
        raise SystemExit(f"error: {exc}") from None
    print(f"checkpoint: {out}")


if __name__ == "__main__":
    main()
