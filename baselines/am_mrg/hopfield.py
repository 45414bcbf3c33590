"""A modern Hopfield layer with a frozen stored-pattern memory (the ``HopfieldLayer`` lookup of
Ramsauer et al. 2021, "Hopfield Networks is All You Need"), written here because ml-jku's
``hflayers`` is not on PyPI.

AM-MRG uses two of these (V-Hopfield over the disease visual memory, R-Hopfield over the report
memory) with the ``hflayers`` settings the authors pass: 6 heads, β = 4.0, one update step,
LayerNorm on the state, stored and projected patterns, dropout 0.1 on the association matrix,
stored patterns fixed and reused as values.
"""

from __future__ import annotations

import torch
from torch import nn


class HopfieldLayer(nn.Module):
    r"""One retrieval step of a multi-head modern Hopfield network over fixed stored patterns.

    For state patterns ξ ∈ ℝ^{B×S×d_in} (queries) and stored patterns Y ∈ ℝ^{N×d_y} (the memory),
    per head h = 1 … H::

        Q_h = LN_ξ(ξ) W_Q^h + b_Q^h            (d_in → d_k)
        K_h = LN_Y(Y) W_K^h + b_K^h            (d_y  → d_k)
        V_h = LN_V(Y) W_V^h + b_V^h            (d_y  → d_v)
        Z_h = dropout( softmax( β · Q_h K_hᵀ ) ) · V_h
        Z   = concat(Z_1, …, Z_H) W_O + b_O    (H·d_v → d_out)

    which is the modern-Hopfield update ξ_new = Y softmax(β Yᵀ ξ) with learned projections; the
    softmax runs over the N stored patterns. β is *not* 1/√d_k: it is the inverse temperature
    (AM-MRG: 4.0), large enough that a query close to one stored pattern retrieves that pattern.
    The stored patterns are a non-persistent buffer set with ``set_memory`` (never trained, never
    in the state dict: memories are files with their own provenance and sha256).
    """

    def __init__(
        self,
        input_size: int,
        stored_size: int,
        *,
        num_heads: int = 6,
        hidden_size: int = 1024,
        pattern_size: int = 768,
        output_size: int | None = None,
        beta: float = 4.0,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.num_heads, self.hidden_size, self.pattern_size = num_heads, hidden_size, pattern_size
        self.beta = float(beta)
        self.norm_state = nn.LayerNorm(input_size, eps=layer_norm_eps)
        self.norm_stored = nn.LayerNorm(stored_size, eps=layer_norm_eps)
        self.norm_projection = nn.LayerNorm(stored_size, eps=layer_norm_eps)
        self.q_proj = nn.Linear(input_size, num_heads * hidden_size)
        self.k_proj = nn.Linear(stored_size, num_heads * hidden_size)
        self.v_proj = nn.Linear(stored_size, num_heads * pattern_size)
        self.out_proj = nn.Linear(num_heads * pattern_size, output_size or input_size)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("stored_patterns", torch.zeros(0, stored_size), persistent=False)

    def set_memory(self, patterns: torch.Tensor) -> None:
        """Replace the stored patterns (N, d_y); they are detached and never receive gradients."""
        if patterns.dim() != 2 or patterns.shape[1] != self.norm_stored.normalized_shape[0]:
            raise ValueError(
                f"memory must be (N, {self.norm_stored.normalized_shape[0]}), got {tuple(patterns.shape)}"
            )
        self.stored_patterns = patterns.detach().to(self.q_proj.weight.device, self.q_proj.weight.dtype)

    @property
    def memory_size(self) -> int:
        return int(self.stored_patterns.shape[0])

    def association(self, state: torch.Tensor) -> torch.Tensor:
        """softmax(β Q Kᵀ) per head, (B, H, S, N), before dropout (for inspection and tests)."""
        q, k, _ = self._project(state)
        return torch.softmax(self.beta * q @ k.transpose(-1, -2), dim=-1)

    def _project(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.memory_size == 0:
            raise RuntimeError("HopfieldLayer has no stored patterns; call set_memory first")
        b, s, _ = state.shape
        y = self.stored_patterns.to(state.dtype)
        h = self.num_heads
        q = self.q_proj(self.norm_state(state)).view(b, s, h, self.hidden_size).transpose(1, 2)
        k = self.k_proj(self.norm_stored(y)).view(-1, h, self.hidden_size).transpose(0, 1)
        v = self.v_proj(self.norm_projection(y)).view(-1, h, self.pattern_size).transpose(0, 1)
        return q, k.unsqueeze(0), v.unsqueeze(0)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """(B, S, d_in) state patterns -> (B, S, d_out) retrieved patterns."""
        q, k, v = self._project(state)
        weights = self.dropout(torch.softmax(self.beta * q @ k.transpose(-1, -2), dim=-1))
        z = (weights @ v).transpose(1, 2).reshape(state.shape[0], state.shape[1], -1)
        return self.out_proj(z)
