"""The ``accelerate`` set-up every trainer uses: CPU unless a GPU was asked for and exists, bf16
mixed precision only where the recipe wants it and the GPU supports it.

One place, so ``bench train --device cpu`` means the same for every model, and a recipe's ``bf16``
switch can never turn on mixed precision on hardware that would silently fall back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelerate import Accelerator

    from rrg_bench.api.training import TrainRequest


def make_accelerator(request: TrainRequest, bf16: bool) -> Accelerator:
    import torch
    from accelerate import Accelerator

    on_gpu = request.device != "cpu" and torch.cuda.is_available()
    mixed = "bf16" if (bf16 and on_gpu and torch.cuda.is_bf16_supported()) else "no"
    return Accelerator(cpu=not on_gpu, mixed_precision=mixed)
