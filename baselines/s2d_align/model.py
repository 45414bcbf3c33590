"""The MLLM of LLaVA shape with S2D-Align's shared memory adapter.

``images -> vision encoder (frozen by default) -> projector -> memory adapter -> visual tokens``
placed in ``Human: <Img>[visual]</Img> [references] instruction \\nAssistant:`` after BOS; the LLM
(frozen, optionally LoRA-adapted) is trained on the target tokens only. Prompts differ in length
(references), so sequences are left-padded with explicit position ids, the same layout
``generate`` uses: a study's output does not depend on its batch mates. The memory bank is a
parameter of ``MemoryAdapter`` and travels in ``model.safetensors`` from stage to stage.
The encoder builder, image averaging and checkpoint format are the shared ``baselines.common.mllm``
(also am_mrg's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rrg_bench.baselines.common.collate import IGNORE_INDEX
from rrg_bench.baselines.common.mllm import ImagePrefixLLM
from rrg_bench.baselines.common.vision import build_vision_encoder, encoder_width
from rrg_bench.baselines.s2d_align.configuration import PROMPT_HEAD, MemoryConfig, S2DAlignConfig

BANK_KEY = "memory_adapter.bank"


class MemoryAdapter(nn.Module):
    """Visual tokens read a learnable bank (slots x d) by multi-head cross-attention; the read is
    added through a zero-initialised tanh gate (starts as identity) or appended as extra tokens."""

    def __init__(self, dim: int, config: MemoryConfig) -> None:
        super().__init__()
        self.output = config.output
        self.bank = nn.Parameter(torch.randn(config.slots, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, config.heads, batch_first=True)
        self.gate = nn.Parameter(torch.zeros(1))
        self.bank.requires_grad_(config.trainable)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        bank = self.bank.to(tokens.dtype).unsqueeze(0).expand(tokens.shape[0], -1, -1)
        read, _ = self.attention(self.norm(tokens), bank, bank, need_weights=False)
        read = torch.tanh(self.gate).to(tokens.dtype) * read
        return tokens + read if self.output == "residual" else torch.cat([tokens, read], dim=1)


def bank_sha256(tensor: torch.Tensor) -> str:
    t = tensor.detach().float().cpu().contiguous()
    return hashlib.sha256(f"{tuple(t.shape)}".encode() + t.numpy().tobytes()).hexdigest()


def build_projector(kind: str, width: int, d_llm: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(width, d_llm)
    return nn.Sequential(nn.Linear(width, d_llm), nn.GELU(), nn.Linear(d_llm, d_llm))


class S2DAlign(ImagePrefixLLM):
    def __init__(self, config: S2DAlignConfig, llm: Any) -> None:
        super().__init__()
        self.config = config
        self.vision_encoder = build_vision_encoder(config.vision_config)
        width = encoder_width(self.vision_encoder)
        d_llm = int(llm.get_input_embeddings().embedding_dim)
        self.projector = build_projector(config.projector, width, d_llm)
        self.memory_adapter = MemoryAdapter(d_llm, config.memory)
        self.keyphrase_head = (nn.Linear(d_llm, len(config.phrase_vocab))
                               if config.keyphrase_target == "head" and config.phrase_vocab else None)
        self.llm = llm
        for p in self.llm.parameters():
            p.requires_grad_(False)
        self.vision_encoder.requires_grad_(False)
        self.bos_id: int | None = None
        self.eos_id: int | None = None
        self.pad_id = 0
        self._tokenizer: Any = None

    def train(self, mode: bool = True) -> S2DAlign:
        super().train(mode)
        if not any(p.requires_grad for p in self.vision_encoder.parameters()):
            self.vision_encoder.eval()
        if not self.config.lora:
            self.llm.eval()
        return self

    def set_tokenizer(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.bos_id = tokenizer.bos_token_id
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def add_keyphrase_head(self, vocab: list[str]) -> None:
        d_llm = int(self.llm.get_input_embeddings().embedding_dim)
        self.keyphrase_head = nn.Linear(d_llm, len(vocab)).to(self.projector_device())

    def projector_device(self) -> torch.device:
        return next(self.projector.parameters()).device

    # ---- image side ----
    def visual_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder tokens -> projector -> memory adapter: the LLM-space visual prefix."""
        weight = next(self.projector.parameters())
        return self.memory_adapter(self.projector(features.to(weight.dtype)))

    # ---- sequences ----
    def prompt_ids(self, tail: str) -> tuple[list[int], list[int]]:
        """Token ids before the visual tokens (BOS + head) and after them (``tail``)."""
        tok = self._tokenizer
        bos = [self.bos_id] if self.bos_id is not None else []
        head = bos + tok(PROMPT_HEAD, add_special_tokens=False)["input_ids"]
        return head, tok(tail, add_special_tokens=False)["input_ids"]

    def assemble(self, visual: torch.Tensor, tails: Sequence[str], targets: Sequence[Sequence[int]] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left-padded (embeds, attention mask, position ids, labels) for a batch: each row is
        [BOS head ; visual ; tail ; target]; labels are the target ids, IGNORE_INDEX elsewhere."""
        table = self.llm.get_input_embeddings()
        device, dtype = visual.device, table.weight.dtype
        rows, labels = [], []

        def ids(x: Sequence[int]) -> torch.Tensor:
            return torch.tensor(x, dtype=torch.long, device=device)

        for i, tail in enumerate(tails):
            head_ids, tail_ids = self.prompt_ids(tail)
            target = list(targets[i]) if targets is not None else []
            parts = [table(ids(head_ids)), visual[i].to(dtype), table(ids(tail_ids))]
            if target:
                parts.append(table(ids(target)))
            rows.append(torch.cat(parts))
            labels.append([IGNORE_INDEX] * (rows[-1].shape[0] - len(target)) + target)
        longest = max(r.shape[0] for r in rows)
        pad = table(torch.tensor([self.pad_id], device=device))[0]
        embeds = torch.stack([torch.cat([pad.expand(longest - r.shape[0], -1), r]) for r in rows])
        mask = torch.tensor([[0] * (longest - r.shape[0]) + [1] * r.shape[0] for r in rows], device=device)
        label_t = torch.tensor([[IGNORE_INDEX] * (longest - len(lab)) + lab for lab in labels], device=device)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        return embeds, mask, positions, label_t

    def forward(self, tails: Sequence[str], targets: Sequence[Sequence[int]], pixel_values: torch.Tensor | None = None,
                image_counts: Sequence[int] | None = None, phrase_targets: torch.Tensor | None = None,
                image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy over target tokens (+ weighted phrase-head BCE in "head" mode)."""
        visual = self.visual_tokens(self._image_features(pixel_values, image_counts, image_features))
        embeds, mask, positions, labels = self.assemble(visual, tails, targets)
        logits = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE_INDEX)
        if self.keyphrase_head is not None and phrase_targets is not None:
            scores = self.keyphrase_head(visual.mean(dim=1).float())
            loss = loss + self.config.keyphrase_weight * F.binary_cross_entropy_with_logits(
                scores, phrase_targets.to(scores))
        return loss

    @torch.no_grad()
    def generate_ids(self, tails: Sequence[str], pixel_values: torch.Tensor | None = None,
                     image_counts: Sequence[int] | None = None, image_features: torch.Tensor | None = None,
                     **generate_kwargs: Any) -> torch.LongTensor:
        features = self._image_features(pixel_values, image_counts, image_features)
        embeds, mask, _, _ = self.assemble(self.visual_tokens(features), tails)
        options: dict[str, Any] = dict(do_sample=False, eos_token_id=self.eos_id, pad_token_id=self.pad_id,
                                       use_cache=True)
        options.update(generate_kwargs)
        return self.llm.generate(inputs_embeds=embeds, attention_mask=mask, **options)

    @torch.no_grad()
    def keyphrase_scores(self, features: torch.Tensor) -> torch.Tensor:
        if self.keyphrase_head is None:
            raise ValueError("this checkpoint has no key-phrase head (stage 3 with keyphrase_target=head adds it)")
        return torch.sigmoid(self.keyphrase_head(self.visual_tokens(features).mean(dim=1).float()))
