"""The BLIP-2 Q-Former AM-MRG starts stage 2 from, in LAVIS or Hugging Face naming.

Why: the authors build the Q-Former with LAVIS's BERT (``Qformer.bert.*``) and load
``blip2_pretrained_flant5xxl.pth`` into the whole model with ``strict=False``
(Event-AHU/Medical_Image_Analysis@fc615ec:AM_MRG/models/AM_MRG.py, ``load_from_pretrained``, called
at line 57), so every ``Qformer.bert.*`` tensor whose module AM-MRG keeps is loaded and the rest is
silently dropped: the 32 BLIP-2 ``query_tokens`` (AM-MRG's 14 queries are named ``disease_tokens`` and
stay random), the word/position embeddings and the text-side feed-forward layers (set to None in
``init_Qformer``), ``ln_vision``, ``t5_proj`` and the heads. Our Q-Former is ``transformers``'
``Blip2QFormerModel``; LAVIS names map to it as in transformers'
``models/blip_2/convert_blip_2_original_to_pytorch.py`` (``Qformer.bert`` -> ``qformer``,
``attention.self`` -> ``attention.attention``, ``embeddings.LayerNorm`` -> ``layernorm``). The same
mapping reads the Q-Former of the authors' stage-2 checkpoints (``release.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from rrg_bench.errors import UsageError

LAVIS_PREFIX = "Qformer.bert."
HF_PREFIX = "qformer."
#: LAVIS Q-Former modules AM-MRG removes (``init_Qformer``): never loaded, dropped on purpose
_DROPPED = re.compile(r"^(embeddings\.(word_embeddings|position_embeddings|position_ids)"
                      r"|encoder\.layer\.\d+\.(intermediate|output)\.)")


def lavis_key(key: str) -> str | None:
    """Our ``Blip2QFormerModel`` name of a LAVIS ``Qformer.bert.*`` key; None for keys AM-MRG drops
    (or that are not the Q-Former's)."""
    if not key.startswith(LAVIS_PREFIX):
        return None
    rest = key[len(LAVIS_PREFIX):]
    if _DROPPED.match(rest):
        return None
    if rest.startswith("embeddings.LayerNorm."):
        return "layernorm." + rest.rsplit(".", 1)[1]
    return rest.replace(".attention.self.", ".attention.attention.").replace(
        ".crossattention.self.", ".crossattention.attention.")


def from_lavis(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(the Q-Former tensors in our names, the LAVIS Q-Former keys dropped as AM-MRG drops them)."""
    mapped, dropped = {}, []
    for key, value in state.items():
        ours = lavis_key(key)
        if ours is not None:
            mapped[ours] = value
        elif key.startswith(LAVIS_PREFIX):
            dropped.append(key)
    return mapped, dropped


def _from_safetensors(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    state: dict[str, torch.Tensor] = {}
    for f in sorted(directory.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            state.update({k[len(HF_PREFIX):]: fh.get_tensor(k) for k in fh.keys() if k.startswith(HF_PREFIX)})
    return state


def qformer_state(source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(Q-Former tensors in our names, provenance) from LAVIS's ``.pth`` (``model`` -> ``Qformer.bert.*``)
    or a Hugging Face BLIP-2 directory (``qformer.*`` in ``*.safetensors``)."""
    from rrg_bench.baselines.am_mrg.pickles import load_checkpoint
    from rrg_bench.baselines.am_mrg.weights import locate
    from rrg_bench.hashing import sha256_file_memo

    path = locate(source, "qformer_init")
    if path.is_dir() and not any(path.glob("*.safetensors")):
        candidates = sorted(path.glob("*.pth"))
        path = candidates[0] if len(candidates) == 1 else path
    if path.is_file():
        checkpoint = load_checkpoint(path)
        model = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
        state, dropped = from_lavis(model if isinstance(model, dict) else {})
        provenance = {"file": path.name, "sha256": sha256_file_memo(path), "layout": "lavis",
                      "dropped": len(dropped)}
    else:
        state, provenance = _from_safetensors(path), {"directory": str(path), "layout": "huggingface"}
    if not state:
        raise UsageError(f"am_mrg: qformer_init={source} holds no Q-Former tensors (LAVIS Qformer.bert.* in a .pth, "
                         "or qformer.* in *.safetensors)")
    return state, {**provenance, "tensors": len(state)}


def load_qformer_init(qformer: torch.nn.Module, source: str) -> dict[str, Any]:
    """Load the BLIP-2 Q-Former into ``qformer`` (every tensor it has must be provided); returns provenance."""
    state, provenance = qformer_state(source)
    try:
        missing, unexpected = qformer.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: another width or encoder_hidden_size
        reason = str(exc).splitlines()[0]
        raise UsageError(f"am_mrg: qformer_init={source} does not fit the Q-Former: {reason}") from None
    if unexpected or any(not k.startswith("embeddings.") for k in missing):
        raise UsageError(f"am_mrg: qformer_init={source} does not fit the Q-Former (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    return provenance
