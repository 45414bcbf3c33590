"""ARM-L, the Mamba vision encoder of AM-MRG (MambaXray-VL's ``MambaXrayCLIP-L``), in plain PyTorch.

Why written here: the authors build it with ``arm_large_pz16`` from their copy of ARM (Ren et al.,
"Autoregressive Pretraining with Mamba in Vision", github.com/OliverRensu/ARM) on a fork of
``mamba_ssm`` whose fused kernels need CUDA. The architecture below follows the upstream ARM
``models_mamba.py`` and the ``Mamba`` mixer of the authors' ``mamba_simple.py`` (bimamba v3) so that
the parameter names — and therefore ``MambaXrayCLIP-L.pth`` and the authors' stage-2 checkpoints —
load with no renaming; the scan runs through ``selective_scan`` (pure PyTorch on CPU, the fused kernel
of stock ``mamba_ssm`` on a GPU when installed).

At paper size: 224 px, 16-px patches (14 x 14 = 196) with one class token *in the middle* (position
98), learned absolute positions, 24 blocks of width 1024, each ``h + mixer(LN(h))`` then
``h + SwiGLU(LN(h))`` (hidden 2730) with stochastic depth 0 → 0.1, then a final LayerNorm. The mixer
scans four ways — forward, backward, column-major ("vertical", class token kept in the middle) and
column-major backward — with one input and one output projection and separate convolution, x/dt
projections, A and D per way, and averages them. ``forward`` returns all 197 tokens after the final
LayerNorm (the token sequence AM-MRG averages over a study's images and feeds to the Q-Former and the
LLM; the upstream classifier's ``head`` is kept so checkpoints load strictly, and never used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from rrg_bench.baselines.am_mrg.selective_scan import selective_scan

#: the four scan directions of bimamba "v3" and the suffix of their parameters
DIRECTIONS = ("", "_b", "_c", "_c_b")


class ARMConfig(BaseModel):
    """An ARM encoder's architecture, stored in a checkpoint's ``config.json`` (``model_type`` "arm")."""

    model_config = ConfigDict(extra="forbid")

    model_type: Literal["arm"] = "arm"
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    d_state: int = 16
    d_conv: int = 4
    expand: int = 1
    #: "auto" in the authors' code: ceil(hidden / 16)
    dt_rank: int = 64
    #: SwiGLU hidden width: hidden * 4 * 2 // 3
    mlp_hidden_size: int = 2730
    drop_path_rate: float = 0.1
    #: the unused ImageNet head of upstream ARM (present in the checkpoints)
    num_classes: int = 1000
    layer_norm_eps: float = 1e-5

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid**2 + 1

    @classmethod
    def sized(cls, hidden_size: int, **fields: Any) -> ARMConfig:
        """A config whose derived widths (dt rank, SwiGLU hidden) follow ``hidden_size`` as the authors'."""
        return cls(hidden_size=hidden_size, dt_rank=math.ceil(hidden_size / 16),
                   mlp_hidden_size=hidden_size * 4 * 2 // 3, **fields)


@dataclass
class ARMOutput:
    last_hidden_state: torch.Tensor


def vertical_order(x: torch.Tensor) -> torch.Tensor:
    """(b, c, g·g + 1) tokens in row-major patch order with the class token at position L // 2 ->
    the same tokens in column-major patch order, the class token staying at L // 2. Its own inverse."""
    length = x.shape[-1]
    middle, grid = length // 2, math.isqrt(length - 1)
    cls = x[..., middle:middle + 1]
    patches = torch.cat([x[..., :middle], x[..., middle + 1:]], dim=-1)
    patches = patches.reshape(*x.shape[:-1], grid, grid).transpose(-1, -2).reshape(*x.shape[:-1], grid * grid)
    return torch.cat([patches[..., :middle], cls, patches[..., middle:]], dim=-1)


class BiMambaV3(nn.Module):
    """The authors' ``Mamba(expand=1, bimamba_type="v3", if_devide_out=True)`` mixer (no biases on the
    input/output projections, depthwise causal convolution with bias, dt rank ``ceil(d/16)``)."""

    def __init__(self, config: ARMConfig) -> None:
        super().__init__()
        d_model, self.d_state, self.dt_rank = config.hidden_size, config.d_state, config.dt_rank
        self.d_inner = config.expand * d_model
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        for suffix in DIRECTIONS:
            self.add_module(f"conv1d{suffix}", nn.Conv1d(self.d_inner, self.d_inner, config.d_conv,
                                                         groups=self.d_inner, padding=config.d_conv - 1))
            self.add_module(f"x_proj{suffix}", nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False))
            self.add_module(f"dt_proj{suffix}", nn.Linear(self.dt_rank, self.d_inner))
            a = torch.arange(1, self.d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
            self.register_parameter(f"A{suffix}_log", nn.Parameter(torch.log(a)))
            self.register_parameter(f"D{suffix}", nn.Parameter(torch.ones(self.d_inner)))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self._init_dt()

    def _init_dt(self, dt_min: float = 1e-3, dt_max: float = 0.1, floor: float = 1e-4) -> None:
        """Mamba's dt initialisation: weights U(±rank^-½); bias = softplus⁻¹ of log-uniform [dt_min, dt_max]."""
        with torch.no_grad():
            for suffix in DIRECTIONS:
                proj = getattr(self, f"dt_proj{suffix}")
                nn.init.uniform_(proj.weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)
                dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
                dt = dt.clamp(min=floor)
                proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def scan(self, xz: torch.Tensor, suffix: str) -> torch.Tensor:
        """One direction (``mamba_inner_fn_no_out_proj``): (b, 2·d_inner, L) -> (b, d_inner, L)."""
        length = xz.shape[-1]
        x, z = xz.chunk(2, dim=1)
        x = F.silu(getattr(self, f"conv1d{suffix}")(x)[..., :length])
        dt, B, C = torch.split(getattr(self, f"x_proj{suffix}")(x.transpose(1, 2)),
                               [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt_proj = getattr(self, f"dt_proj{suffix}")
        delta = (dt @ dt_proj.weight.t()).transpose(1, 2)
        A = -torch.exp(getattr(self, f"A{suffix}_log").float())
        return selective_scan(x, delta, A, B.transpose(1, 2), C.transpose(1, 2), getattr(self, f"D{suffix}").float(),
                              z=z, delta_bias=dt_proj.bias.float(), delta_softplus=True)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(b, L, d) -> (b, L, d): the mean of the four scans, projected back to the model width."""
        xz = self.in_proj(hidden).transpose(1, 2)
        rows = self.scan(xz, "") + self.scan(xz.flip(-1), "_b").flip(-1)
        xc = vertical_order(xz)
        columns = self.scan(xc, "_c") + self.scan(xc.flip(-1), "_c_b").flip(-1)
        mixed = (rows + vertical_order(columns)) / 4
        return self.out_proj(mixed.transpose(1, 2).to(hidden.dtype))


class SwiGLU(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.w1, self.w2, self.w3 = nn.Linear(width, hidden), nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w3(F.silu(self.w1(x)) * self.w2(x))


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the residual branch per sample with probability ``rate`` (training only)."""
    if rate == 0.0 or not training:
        return x
    keep = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(1 - rate)
    return x * keep / (1 - rate)


class ARMBlock(nn.Module):
    def __init__(self, config: ARMConfig, drop_rate: float) -> None:
        super().__init__()
        self.drop_rate = drop_rate
        self.mixer = BiMambaV3(config)
        self.mlp = SwiGLU(config.hidden_size, config.mlp_hidden_size)
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden + drop_path(self.mixer(self.norm1(hidden)), self.drop_rate, self.training)
        return hidden + drop_path(self.mlp(self.norm2(hidden)), self.drop_rate, self.training)


class PatchEmbed(nn.Module):
    def __init__(self, config: ARMConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, stride=config.patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(pixels).flatten(2).transpose(1, 2)


class ARMEncoder(nn.Module):
    """Image -> (b, g·g + 1, d) tokens with the class token in the middle, after the final LayerNorm."""

    def __init__(self, config: ARMConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.patch_embed = PatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, d))
        self.head = nn.Linear(d, config.num_classes)
        # upstream: layer i drops its branches with rate ([0] + linspace(0, rate, depth))[i]
        depth = config.num_hidden_layers
        rates = [0.0] + [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.layers = nn.ModuleList(ARMBlock(config, rates[i]) for i in range(config.num_hidden_layers))
        self.norm_f = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self._init_weights()

    @property
    def num_features(self) -> int:
        return self.config.hidden_size

    def _init_weights(self) -> None:
        """Upstream's initialisation: truncated-normal positions/class token and head, zero linear biases
        (dt biases excepted), out_proj kaiming-uniform scaled by 1/√depth."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        with torch.no_grad():
            for name, module in self.named_modules():
                if isinstance(module, nn.Linear) and module.bias is not None and ".dt_proj" not in name:
                    nn.init.zeros_(module.bias)
                if name.endswith("mixer.out_proj"):
                    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
                    module.weight /= math.sqrt(self.config.num_hidden_layers)

    def forward(self, pixel_values: torch.Tensor) -> ARMOutput:
        tokens = self.patch_embed(pixel_values)
        middle = tokens.shape[1] // 2
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        hidden = torch.cat([tokens[:, :middle], cls, tokens[:, middle:]], dim=1) + self.pos_embed
        for layer in self.layers:
            hidden = layer(hidden)
        return ARMOutput(self.norm_f(hidden))
