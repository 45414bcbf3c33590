"""Stage 2: the associative-memory generator (reference/models.md §2.3).

``images -> vision encoder (ARM-L, or a named substitute) -> F (T tokens, averaged over a study's images)``;
``Linear(D_v -> W) -> Q-Former with 14 queries -> Q_f``; ``V = V-Hopfield(Q_f)`` over the visual
memory, ``R = R-Hopfield(Q_f)`` over the report memory; ``output_proj`` (768 -> D_v) on Q_f, V, R,
then ``llama_proj`` (D_v -> d_LLM) on [F ; Q_f ; V ; R] and a LayerNorm: T + 3 x 14 visual tokens
(239 at paper size) placed inside the prompt ``Human: <Img>…</Img> Generate … \\nAssistant:`` after
BOS. The LLM is frozen (optionally LoRA-adapted); the loss covers the report tokens and EOS only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rrg_bench.baselines.am_mrg.configuration import IMAGE_PLACEHOLDER, AMMRGConfig
from rrg_bench.baselines.am_mrg.encoders import build_vision_encoder
from rrg_bench.baselines.am_mrg.hopfield import HopfieldLayer
from rrg_bench.baselines.common.collate import IGNORE_INDEX
from rrg_bench.baselines.common.mllm import ImagePrefixLLM
from rrg_bench.baselines.common.vision import build_hf_config, encoder_width


class AMMRG(ImagePrefixLLM):
    def __init__(self, config: AMMRGConfig, llm: Any) -> None:
        super().__init__()
        from transformers import Blip2QFormerModel

        self.config = config
        self.vision_encoder = build_vision_encoder(config.vision_config)
        width = encoder_width(self.vision_encoder)
        qcfg = build_hf_config(config.qformer_config)
        hidden = int(qcfg.hidden_size)
        self.qformer_proj = nn.Linear(width, int(qcfg.encoder_hidden_size))
        self.qformer = Blip2QFormerModel(qcfg)
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_queries, hidden))
        nn.init.normal_(self.query_tokens, std=0.02)
        h = config.hopfield

        def hopfield(stored_size: int) -> HopfieldLayer:
            return HopfieldLayer(hidden, stored_size, num_heads=h.num_heads, hidden_size=h.hidden_size,
                                 pattern_size=h.pattern_size, output_size=hidden, beta=h.beta, dropout=h.dropout)

        self.v_hopfield = hopfield(config.visual_memory_dim)
        self.r_hopfield = hopfield(config.report_memory_dim)
        self.output_proj = nn.Linear(hidden, width)
        nn.init.normal_(self.output_proj.weight, std=0.02)
        nn.init.zeros_(self.output_proj.bias)
        d_llm = int(llm.get_input_embeddings().embedding_dim)
        self.llama_proj = nn.Linear(width, d_llm)
        self.llama_norm = nn.LayerNorm(d_llm)
        self.llm = llm
        for p in self.llm.parameters():  # frozen; LoRA (if any) re-enables its adapters after this
            p.requires_grad_(False)
        self.prompt_ids: tuple[list[int], list[int]] = ([], [])
        self.bos_id: int | None = None
        self.eos_id: int | None = None
        self.pad_id: int = 0
        #: set by the trainer for freeze_vision=true (features come from the cache, encoder in eval mode)
        self.vision_frozen = False

    def train(self, mode: bool = True) -> AMMRG:
        """A frozen LLM (and a frozen encoder) stay in eval mode; LoRA adapters follow ``mode``."""
        super().train(mode)
        if self.vision_frozen:
            self.vision_encoder.eval()
        if not self.config.lora:
            self.llm.eval()
        return self

    # ---- tokens of the prompt ----
    def set_tokenizer(self, tokenizer: Any) -> None:
        """Token ids of the prompt around the image placeholder (BOS first, as the authors do)."""
        before, after = self.config.prompt.split(IMAGE_PLACEHOLDER)
        self.prompt_ids = (
            tokenizer(before, add_special_tokens=False)["input_ids"],
            tokenizer(after, add_special_tokens=False)["input_ids"],
        )
        self.bos_id = tokenizer.bos_token_id
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @property
    def prompt_length(self) -> int:
        """Positions before the report: BOS + prompt head + visual tokens + prompt tail."""
        head, tail = self.prompt_ids
        return int(self.bos_id is not None) + len(head) + self.config.prefix_length() + len(tail)

    # ---- memories ----
    def set_memories(self, visual: torch.Tensor, report: torch.Tensor) -> None:
        self.v_hopfield.set_memory(visual)
        self.r_hopfield.set_memory(report)

    # ---- image side ----
    def visual_prefix(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D_v) encoder tokens -> (B, T + 3·14, d_LLM) LLM-space visual tokens."""
        features = features.to(self.qformer_proj.weight.dtype)
        b = features.shape[0]
        q = self.qformer(query_embeds=self.query_tokens.expand(b, -1, -1),
                         encoder_hidden_states=self.qformer_proj(features)).last_hidden_state
        v = self.v_hopfield(q)
        r = self.r_hopfield(q)
        tokens = torch.cat([features, self.output_proj(q), self.output_proj(v), self.output_proj(r)], dim=1)
        return self.llama_norm(self.llama_proj(tokens))

    # ---- sequence layout ----
    def _embed(self, ids: list[int], b: int, device) -> torch.Tensor:
        table = self.llm.get_input_embeddings()
        return table(torch.tensor(ids, dtype=torch.long, device=device)).unsqueeze(0).expand(b, -1, -1)

    def prompt_embeddings(self, prefix: torch.Tensor) -> torch.Tensor:
        """[BOS ; prompt head ; visual tokens ; prompt tail] embeddings, (B, prompt_length, d_LLM)."""
        b, device = prefix.shape[0], prefix.device
        head = ([self.bos_id] if self.bos_id is not None else []) + self.prompt_ids[0]
        dtype = self.llm.get_input_embeddings().weight.dtype
        tail = self._embed(self.prompt_ids[1], b, device)
        return torch.cat([self._embed(head, b, device), prefix.to(dtype), tail], 1)

    def build_inputs(self, prefix: torch.Tensor, report_ids: torch.Tensor, report_mask: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs_embeds, attention_mask, labels) for teacher forcing: labels are IGNORE_INDEX on BOS,
        prompt, visual and padding positions, the report token ids (incl. EOS) elsewhere."""
        prompt = self.prompt_embeddings(prefix)
        b, n = prompt.shape[:2]
        embeds = torch.cat([prompt, self.llm.get_input_embeddings()(report_ids)], dim=1)
        ones = torch.ones(b, n, dtype=torch.long, device=prefix.device)
        attention = torch.cat([ones, report_mask.long()], dim=1)
        report_labels = report_ids.masked_fill(report_mask == 0, IGNORE_INDEX)
        labels = torch.cat([torch.full_like(ones, IGNORE_INDEX), report_labels], 1)
        return embeds, attention, labels

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor | None = None,
                image_counts: list[int] | None = None, image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy over report tokens (``input_ids`` = report + EOS, right-padded)."""
        image_features = self._image_features(pixel_values, image_counts, image_features)
        embeds, attention, labels = self.build_inputs(self.visual_prefix(image_features), input_ids, attention_mask)
        logits = self.llm(inputs_embeds=embeds, attention_mask=attention).logits
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE_INDEX)

    @torch.no_grad()
    def generate_reports(self, pixel_values: torch.Tensor | None = None, image_counts: list[int] | None = None,
                         image_features: torch.Tensor | None = None, **generate_kwargs: Any) -> torch.LongTensor:
        """New token ids per study. Every prompt has the same length, so no padding is needed and a
        study's output does not depend on its batch mates."""
        image_features = self._image_features(pixel_values, image_counts, image_features)
        embeds = self.prompt_embeddings(self.visual_prefix(image_features))
        attention = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        options: dict[str, Any] = dict(do_sample=False, eos_token_id=self.eos_id, pad_token_id=self.pad_id,
                                       use_cache=True)
        options.update(generate_kwargs)
        return self.llm.generate(inputs_embeds=embeds, attention_mask=attention, **options)
