"""Layer-wise hierarchical Gaussian smoothing of the anatomy prior (reference/models.md §1.4).

The prior for decoder block ℓ of L is the lung/heart mask, min–max normalised, resized to the
patch grid, blurred with a Gaussian of kernel k = 3 + 2·(L − ℓ) and σ = (k − 1)/6 (broad in early
blocks, sharp in deep ones), then renormalised to [0, 1]. The blur is one depth-wise separable
convolution over all layers at once: every kernel is zero-padded to the largest size K_max and the
map is reflect-padded by K_max // 2, exactly as described, so results match the recipe bit-for-bit
in structure (zero taps contribute nothing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def kernel_size(layer: int, num_layers: int) -> int:
    """k_ℓ = 3 + 2·(L − ℓ), forced odd (it always is for integer L, ℓ)."""
    k = 3 + 2 * (num_layers - layer)
    return k if k % 2 == 1 else k + 1


def kernel_sigma(k: int) -> float:
    return (k - 1) / 6.0


def max_kernel_size(num_layers: int) -> int:
    return kernel_size(0, num_layers)


def gaussian_kernel(k: int, sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian on x ∈ [−⌊k/2⌋, ⌊k/2⌋]."""
    x = torch.arange(k, dtype=torch.float64) - (k // 2)
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype)


def layer_kernels(num_layers: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(L, K_max): layer ℓ's kernel centred and zero-padded to K_max taps."""
    k_max = max_kernel_size(num_layers)
    out = torch.zeros(num_layers, k_max, dtype=dtype)
    for layer in range(num_layers):
        k = kernel_size(layer, num_layers)
        start = (k_max - k) // 2
        out[layer, start : start + k] = gaussian_kernel(k, kernel_sigma(k), dtype)
    return out


def min_max(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """(x − min) / (max − min + eps) over ``dims``; a constant map becomes all zeros."""
    lo = x.amin(dim=dims, keepdim=True)
    hi = x.amax(dim=dims, keepdim=True)
    return (x - lo) / (hi - lo + EPS)


def masks_to_grid(masks: torch.Tensor, grid: int) -> torch.Tensor:
    """Steps 1–2: per-sample min–max normalise, bilinear resize (align_corners=False) to grid x grid.

    ``masks`` is (B, H, W) or (B, 1, H, W) at any resolution (segmenter logits, file masks, RLE
    decodes); returns (B, grid, grid) float32.
    """
    if masks.ndim == 3:
        masks = masks[:, None]
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"expected masks of shape (B, H, W) or (B, 1, H, W), got {tuple(masks.shape)}")
    x = min_max(masks.float(), dims=(1, 2, 3))
    x = F.interpolate(x, size=(grid, grid), mode="bilinear", align_corners=False)
    return x[:, 0]


def masks_to_clamped_map(masks: torch.Tensor, size: int) -> torch.Tensor:
    """lana_radgen's steps 1–2: bilinear resize (align_corners=False) to size x size, then clamp to [0, 1]; no
    min–max first, so an all-ones mask stays ones (LWA@a017e7b:src/lana_radgen/layerwise_anatomical_attention.py:27-29).
    Same shapes as ``masks_to_grid``."""
    if masks.ndim == 3:
        masks = masks[:, None]
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"expected masks of shape (B, H, W) or (B, 1, H, W), got {tuple(masks.shape)}")
    x = F.interpolate(masks.float(), size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(0.0, 1.0)[:, 0]


def masks_to_prior(masks: torch.Tensor, size: int, kind: str = "minmax") -> torch.Tensor:
    """The map a config's ``prior_kind`` asks for: ``minmax`` (the paper's) or ``clamp`` (lana_radgen)."""
    if kind == "minmax":
        return masks_to_grid(masks, size)
    if kind == "clamp":
        return masks_to_clamped_map(masks, size)
    raise ValueError(f"unknown prior kind {kind!r}")


def layer_stack(grid_masks: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Steps 3–4: (B, G, G) prior -> (B, L, G, G) per-layer maps in [0, 1], sharper with depth."""
    if grid_masks.ndim != 3:
        raise ValueError(f"expected grid masks of shape (B, G, G), got {tuple(grid_masks.shape)}")
    b, g, g2 = grid_masks.shape
    k_max = max_kernel_size(num_layers)
    pad = k_max // 2
    if pad >= min(g, g2):
        raise ValueError(f"grid {g}x{g2} too small for reflect padding {pad} ({num_layers} layers)")
    x = grid_masks.float()[:, None].expand(b, num_layers, g, g2)
    kernels = layer_kernels(num_layers, torch.float32).to(x.device)
    horizontal = kernels.view(num_layers, 1, 1, k_max)
    vertical = kernels.view(num_layers, 1, k_max, 1)
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), horizontal, groups=num_layers)
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), vertical, groups=num_layers)
    return min_max(x, dims=(2, 3))
