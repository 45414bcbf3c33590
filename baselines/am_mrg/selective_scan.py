"""Mamba's selective scan in plain PyTorch, and the one switch to the fused CUDA kernel.

Why our own: ARM-L (the AM-MRG encoder) is a stack of Mamba mixers whose published code calls the
fused kernels of a fork of ``mamba_ssm`` (Vision Mamba's ``mamba_inner_fn_no_out_proj``), which need
CUDA and do not build on CPU. The scan itself is small: this module computes it with a loop over the
sequence (slow, but it runs anywhere and is tested), and hands it to stock ``mamba_ssm``'s
``selective_scan_fn`` — same arguments, same result — only when that package imports and the tensors
are on a GPU. Everything around the scan (projections, causal convolution, gating) stays in PyTorch,
so the fork is never needed.

The computation (Gu & Dao 2023, the ``selective_scan_ref`` semantics of ``mamba_ssm``), per channel d
and state n, with ``Δ = softplus(delta + delta_bias)``::

    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t          y_t = C_t · h_t + D u_t          y_t ← y_t ⊙ silu(z_t)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

#: the module of stock ``mamba_ssm`` that holds the fused kernel (imported only on a GPU)
FUSED_MODULE = "mamba_ssm.ops.selective_scan_interface"


def selective_scan_reference(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                             C: torch.Tensor, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                             delta_bias: torch.Tensor | None = None, delta_softplus: bool = False) -> torch.Tensor:
    """The scan by its recurrence, in float32. ``u``, ``delta``, ``z``: (batch, d, L); ``A``: (d, n);
    ``B``, ``C``: (batch, n, L); ``D``, ``delta_bias``: (d,). Returns (batch, d, L) in ``u``'s dtype."""
    dtype = u.dtype
    u, delta, A, B, C = u.float(), delta.float(), A.float(), B.float(), C.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    decay = torch.exp(delta.unsqueeze(-1) * A[:, None, :])  # (b, d, L, n)
    drive = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)  # (b, d, L, n)
    state = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[-1]):
        state = decay[:, :, t] * state + drive[:, :, t]
        ys.append(torch.einsum("bdn,bn->bd", state, C[:, :, t]))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def fused_kernel() -> Callable[..., torch.Tensor] | None:
    """Stock ``mamba_ssm``'s ``selective_scan_fn`` if it imports here, else None."""
    try:
        import importlib

        return getattr(importlib.import_module(FUSED_MODULE), "selective_scan_fn", None)
    except Exception:  # not installed, or built without CUDA: the reference scan runs instead
        return None


def on_gpu(tensor: torch.Tensor) -> bool:
    return bool(tensor.is_cuda)


def scan_backend(tensor: torch.Tensor) -> str:
    """``"fused"`` when the tensor is on a GPU and ``mamba_ssm``'s kernel is installed, else ``"reference"``."""
    return "fused" if on_gpu(tensor) and fused_kernel() is not None else "reference"


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                   delta_bias: torch.Tensor | None = None, delta_softplus: bool = False) -> torch.Tensor:
    """The scan on the fastest backend available for ``u`` (see ``scan_backend``); same result either way."""
    kwargs: dict[str, Any] = dict(z=z, delta_bias=delta_bias, delta_softplus=delta_softplus)
    if scan_backend(u) == "fused":
        kernel = fused_kernel()
        assert kernel is not None
        return kernel(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
                      D, **kwargs)
    return selective_scan_reference(u, delta, A, B, C, D, **kwargs)
