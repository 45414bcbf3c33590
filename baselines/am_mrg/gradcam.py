"""Grad-CAM on the classifier's final Swin LayerNorm and the authors' patch selection rule.

Grad-CAM (Selvaraju et al. 2017) as the ``pytorch-grad-cam`` package computes it for ViT-like
token maps: activations A (B, G·G, C) of the target layer are reshaped to (B, C, G, G); channel
weights are the spatial mean of ∂score/∂A; CAM = ReLU(Σ_c w_c A_c), min-max scaled to [0, 1] per
image, then resized bilinearly to the input size. Activations and gradients come from autograd
hooks on the target module. The score is the softmax probability of an observation's positive
class (authors' ``cam.py``).

Patch selection: split the S x S map into a 14 x 14 grid of (S/14)-pixel patches, keep patches whose
mean CAM exceeds 0.75, at most the top 6 by mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rrg_bench.baselines.am_mrg.stage1 import DiseaseClassifier

PATCH_GRID = 14
THRESHOLD = 0.75
TOP_K = 6


def grad_cam(model: DiseaseClassifier, pixel_values: torch.Tensor, observation: int) -> torch.Tensor:
    """(B, 3, S, S) -> (B, S, S) CAMs in [0, 1] for ``observation``'s positive-class probability."""
    captured: dict[str, torch.Tensor] = {}

    def keep_activation(_module, _inputs, output):
        output.register_hook(lambda grad: captured.__setitem__("grad", grad))
        captured["act"] = output

    handle = model.encoder.layernorm.register_forward_hook(keep_activation)
    try:
        with torch.enable_grad():
            logits = model(pixel_values)
            score = torch.softmax(logits[:, observation].float(), dim=-1)[:, 1]
            model.zero_grad(set_to_none=True)
            score.sum().backward()
    finally:
        handle.remove()
    act, grad = captured["act"].detach(), captured["grad"].detach()
    b, n, c = act.shape
    g = int(round(n ** 0.5))
    act = act.transpose(1, 2).reshape(b, c, g, g)
    grad = grad.transpose(1, 2).reshape(b, c, g, g)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1))  # (B, g, g)
    cam = cam - cam.amin(dim=(1, 2), keepdim=True)
    cam = cam / (1e-7 + cam.amax(dim=(1, 2), keepdim=True))
    size = pixel_values.shape[-1]
    return F.interpolate(cam.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def select_patches(cam: torch.Tensor, threshold: float = THRESHOLD, top_k: int = TOP_K,
                   grid: int = PATCH_GRID) -> list[tuple[int, float]]:
    """(S, S) CAM -> [(patch index row-major in the grid x grid split, mean CAM)], best first:
    patches with mean CAM strictly above ``threshold``, at most ``top_k``."""
    size = cam.shape[-1]
    if size % grid:
        raise ValueError(f"image size {size} is not divisible into a {grid} x {grid} patch grid")
    p = size // grid
    means = cam.reshape(grid, p, grid, p).mean(dim=(1, 3)).reshape(-1)
    order = torch.argsort(means, descending=True, stable=True)
    return [(int(i), float(means[i])) for i in order[:top_k] if float(means[i]) > threshold]


def crop_patch(pixel_values: torch.Tensor, index: int, grid: int = PATCH_GRID) -> torch.Tensor:
    """(3, S, S) -> the ``index``-th (S/grid)-pixel patch resized back to (3, S, S) (bilinear)."""
    size = pixel_values.shape[-1]
    p = size // grid
    r, c = divmod(index, grid)
    patch = pixel_values[:, r * p : (r + 1) * p, c * p : (c + 1) * p]
    return F.interpolate(patch.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False)[0]
