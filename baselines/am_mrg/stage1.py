"""Stage 1: the disease classifier whose Grad-CAM maps mine the disease-aware visual memory.

``image -> Swin (final LayerNorm: G x G tokens) -> Q-Former with 14 learnable disease queries ->
Linear(768 -> C) -> LayerNorm -> mean over the 14 queries -> 14 MLP heads (C -> 384 -> 48 -> 48 -> 2)``,
trained with the sum over observations of label-smoothed (0.1) two-way cross-entropy, as in the
authors' SwinCheX code (reference/models.md §2.2). Its 14 query tokens become the first 14 patterns
of the visual memory.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from rrg_bench.baselines.am_mrg.configuration import Stage1Config
from rrg_bench.baselines.common.vision import build_hf_config

WEIGHTS = "model.safetensors"


class ObservationHead(nn.Module):
    """One observation's MLP: C -> head_dims … -> 2 with ReLU between layers."""

    def __init__(self, width: int, dims: list[int]) -> None:
        super().__init__()
        sizes = [width, *dims, 2]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class DiseaseClassifier(nn.Module):
    def __init__(self, config: Stage1Config) -> None:
        super().__init__()
        from transformers import Blip2QFormerModel, SwinModel

        self.config = config
        self.encoder = SwinModel(build_hf_config(config.swin_config))
        qcfg = build_hf_config(config.qformer_config)
        width = self.encoder.num_features
        if qcfg.encoder_hidden_size != width:
            raise ValueError(f"Q-Former encoder_hidden_size {qcfg.encoder_hidden_size} != Swin width {width}")
        self.qformer = Blip2QFormerModel(qcfg)
        self.disease_tokens = nn.Parameter(torch.zeros(1, config.num_queries, qcfg.hidden_size))
        nn.init.normal_(self.disease_tokens, std=0.02)
        self.proj = nn.Linear(qcfg.hidden_size, width)
        self.norm = nn.LayerNorm(width)
        self.heads = nn.ModuleList(ObservationHead(width, config.head_dims) for _ in range(config.num_queries))

    @property
    def grid_size(self) -> int:
        c = self.encoder.config
        return self.config.image.size // (c.patch_size * 2 ** (len(c.depths) - 1))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, 14, 2)."""
        tokens = self.encoder(pixel_values=pixel_values).last_hidden_state  # after the final LayerNorm
        queries = self.disease_tokens.expand(pixel_values.shape[0], -1, -1)
        q = self.qformer(query_embeds=queries, encoder_hidden_states=tokens).last_hidden_state
        pooled = self.norm(self.proj(q)).mean(dim=1)
        return torch.stack([head(pooled) for head in self.heads], dim=1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Sum over observations of the batch-mean label-smoothed cross-entropy (labels (B, 14) in {0, 1})."""
        per_obs = [
            F.cross_entropy(logits[:, j].float(), labels[:, j].long(), label_smoothing=self.config.label_smoothing)
            for j in range(logits.shape[1])
        ]
        return torch.stack(per_obs).sum()

    @torch.no_grad()
    def pooled_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, C) average-pooled final Swin tokens: how the authors re-encode Grad-CAM patches."""
        return self.encoder(pixel_values=pixel_values).pooler_output

    # ---- persistence ----
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.config.save(directory)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))

    @classmethod
    def load(cls, directory: Path) -> DiseaseClassifier:
        config = Stage1Config.load(directory)
        model = cls(config)
        model.load_state_dict(load_file(str(Path(directory) / WEIGHTS)))
        return model

    @classmethod
    def from_pretrained_swin(cls, config: Stage1Config, swin: str, revision: str | None = None) -> DiseaseClassifier:
        """Swin weights from a local directory or hub id (authors: ImageNet Swin-L); the rest random."""
        from transformers import SwinModel

        pretrained = SwinModel.from_pretrained(swin, revision=revision)
        config = config.model_copy(update={"swin_config": pretrained.config.to_dict()})
        model = cls(config)
        model.encoder.load_state_dict(pretrained.state_dict())
        return model
