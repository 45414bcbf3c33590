"""The anatomical bias on GPT-2's attention logits, as a registered transformers attention function.

Every GPT-2 block ℓ computes ``softmax(QKᵀ/√d + C + B_ℓ) V`` where C is the causal (and padding)
mask and B_ℓ adds layer ℓ's smoothed anatomy map on the image-patch keys only (positions
0 … N−1 of the sequence, because the image prefix always comes first) — or, for the authors'
later ``sequence`` variant, the map stretched over every key of the sequence, lower triangle only.
Doing it inside the attention function — rather than as one shared 4-D mask — is what makes the
bias *per layer*, and it keeps
working with the KV cache: queries are always the last ``q_len`` of the ``k_len`` cached positions,
so the function knows which absolute rows and columns it is looking at during prefill and during
one-token decoding alike.

Registered names: ``anat_attn_sdpa`` and ``anat_attn_eager`` (delegating to transformers' SDPA or to
GPT-2's eager attention after adding the bias). Both use transformers' eager mask builder so the
causal mask is always materialised as a float tensor we can add to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask
from transformers.models.gpt2.modeling_gpt2 import eager_attention_forward as gpt2_eager_attention

IMPLEMENTATION_NAMES = {"sdpa": "anat_attn_sdpa", "eager": "anat_attn_eager"}


@dataclass(frozen=True)
class AnatomicalSpec:
    """What the attention function needs to turn a layer map into logit offsets."""

    mode: str  # soft | hidden | none
    strength: float
    rows: str  # all | image | legacy_top_left | sequence
    grid: int
    decode_bias: str = "every_step"  # every_step | prefill_only | none (generation)
    train_bias: bool = True  # teacher-forced passes

    def applies(self, phase: str, q_len: int, k_len: int) -> bool:
        """Whether this forward pass gets the bias. ``phase`` is "generate" inside ``generate_reports``
        (prefill: q_len == k_len; a KV-cached decoding step: q_len < k_len), else "teacher_forcing"."""
        if phase == "generate":
            if self.decode_bias == "none":
                return False
            return self.decode_bias == "every_step" or q_len == k_len
        return self.train_bias

    @property
    def num_image_tokens(self) -> int:
        return self.grid * self.grid


def hidden_value(dtype: torch.dtype) -> float:
    """Offset of a hidden patch: far below any real logit, but above the causal mask's dtype-min, so a
    row whose every visible patch is hidden spreads over its *visible* keys instead of the future."""
    return torch.finfo(dtype).min / 2


def sequence_values(layer_maps: torch.Tensor, q_pos: torch.Tensor, k_len: int, length: int | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """lana_radgen's layerwise bias before the strength: the (B, M, M) map flattened row-major and linearly
    interpolated (align_corners=False) to ``length`` tokens, the whole sequence the authors build it for (the
    teacher-forced batch; at generation prompt + max_new_tokens), every query row the same, then ``tril``
    (LWA@a017e7b:src/lana_radgen/layerwise_anatomical_attention.py:58-62; modeling_lana.py ``generate``).
    Returns (values, region) of shape (B, 1, q_len, k_len)."""
    b = layer_maps.shape[0]
    total = k_len if length is None else int(length)
    if total < k_len:
        raise ValueError(f"the sequence bias was built for {total} tokens but attention sees {k_len} keys")
    flat = layer_maps.float().reshape(b, 1, -1)
    if flat.shape[-1] != total:
        flat = F.interpolate(flat, size=total, mode="linear", align_corners=False)
    q_len = q_pos.shape[0]
    values = flat[:, :, :k_len].reshape(b, 1, 1, k_len).expand(b, 1, q_len, k_len)
    k_pos = torch.arange(k_len, device=layer_maps.device)
    region = (k_pos.view(1, k_len) <= q_pos.view(q_len, 1)).view(1, 1, q_len, k_len).expand(b, 1, q_len, k_len)
    return values, region


def anatomical_bias(
    layer_maps: torch.Tensor, spec: AnatomicalSpec, q_len: int, k_len: int, dtype: torch.dtype,
    length: int | None = None,
) -> torch.Tensor:
    """Additive offsets (B, 1, q_len or 1, k_len) in float32 for one decoder layer.

    ``layer_maps`` is that layer's (B, G, G) map in [0, 1]. Queries are the absolute positions
    ``k_len − q_len … k_len − 1``; keys are ``0 … k_len − 1`` (image patches first, row-major,
    the order of DINOv3's patch tokens). ``length`` is the sequence a ``sequence`` bias is stretched over
    (None: the ``k_len`` keys seen here).
    """
    b, g, _ = layer_maps.shape
    device = layer_maps.device
    maps = layer_maps.float()
    q_pos = torch.arange(k_len - q_len, k_len, device=device)

    if spec.rows == "all":
        n = min(spec.num_image_tokens, k_len)
        values = maps.reshape(b, 1, 1, -1)[..., :n]
        region = torch.ones_like(values, dtype=torch.bool)
        width = n
    elif spec.rows == "image":
        n = min(spec.num_image_tokens, k_len)
        row_ok = (q_pos < spec.num_image_tokens).view(1, 1, q_len, 1)
        values = maps.reshape(b, 1, 1, -1)[..., :n].expand(b, 1, q_len, n)
        region = row_ok.expand(b, 1, q_len, n)
        width = n
    elif spec.rows == "legacy_top_left":
        n = min(g, k_len)
        row_ok = q_pos < g
        rows = torch.where(row_ok, q_pos, torch.zeros_like(q_pos))
        values = maps[:, rows, :n].unsqueeze(1)  # (B, 1, q_len, n): map row = query position
        region = row_ok.view(1, 1, q_len, 1).expand(b, 1, q_len, n)
        width = n
    elif spec.rows == "sequence":
        values, region = sequence_values(maps, q_pos, k_len, length)
        width = k_len
    else:
        raise ValueError(f"unknown bias rows {spec.rows!r}")

    if spec.mode == "soft":
        offsets = values * spec.strength
    elif spec.mode == "hidden":
        offsets = torch.where(values == 0, torch.full_like(values, hidden_value(dtype)), values * spec.strength)
    else:
        raise ValueError(f"anatomical_bias called with mode {spec.mode!r}")
    offsets = torch.where(region, offsets, torch.zeros_like(offsets))
    out = torch.zeros(b, 1, offsets.shape[2], k_len, dtype=torch.float32, device=device)
    out[..., :width] = offsets
    return out


def add_bias(attention_mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Causal float mask + bias, clamped so masked + hidden never overflows to −inf or NaN."""
    dtype = attention_mask.dtype
    combined = attention_mask.float() + bias
    return combined.clamp_min(torch.finfo(dtype).min).to(dtype)


def _with_anatomy(backend):
    def anatomical_attention(
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        anatomical_maps: torch.Tensor | None = None,
        anatomical_spec: AnatomicalSpec | None = None,
        anatomical_phase: str = "teacher_forcing",
        anatomical_length: int | None = None,
        **kwargs,
    ):
        q_len, k_len = query.shape[-2], key.shape[-2]
        if (anatomical_spec is not None and anatomical_spec.mode != "none" and anatomical_maps is not None
                and anatomical_spec.applies(anatomical_phase, q_len, k_len)):
            if attention_mask is None:  # the registered eager mask builder always materialises it
                raise RuntimeError("anatomical attention needs a materialised float attention mask")
            # torch types module attributes as Tensor | Module; layer_idx is the attention layer's int
            layer_maps = anatomical_maps[:, module.layer_idx]  # type: ignore[index]
            bias = anatomical_bias(layer_maps, anatomical_spec, q_len, k_len, attention_mask.dtype,
                                   anatomical_length)
            attention_mask = add_bias(attention_mask[:, :, :, :k_len], bias)
        return backend(module, query, key, value, attention_mask, **kwargs)

    return anatomical_attention


AttentionInterface.register(IMPLEMENTATION_NAMES["sdpa"], _with_anatomy(sdpa_attention_forward))
AttentionInterface.register(IMPLEMENTATION_NAMES["eager"], _with_anatomy(gpt2_eager_attention))
for _name in IMPLEMENTATION_NAMES.values():
    AttentionMaskInterface.register(_name, eager_mask)
