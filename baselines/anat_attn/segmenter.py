"""The authors' lung / heart segmenter layout: DINOv3 ConvNeXt backbone + a small upsampling head.

Layout (reference/models.md §1.3): the backbone's last 4-D feature map (stride 32) → 1×1 conv to
512 → 3×3 conv to 256 + ReLU → 2×2 transposed conv (stride 2) to 128 + ReLU → 2×2 transposed conv
to 64 + ReLU → 1×1 conv to C classes; at 512 px that is a 64×64 logit map. The lung model has C = 1
(mask = sigmoid > 0.5), the heart model C = 3 (mask = argmax == 2). Both read the same normalised
512 px pixels as the report encoder. A ``PreTrainedModel`` so weights load from a local directory
or a hub id at a pinned revision like any other checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import DINOv3ConvNextConfig, DINOv3ConvNextModel, PretrainedConfig, PreTrainedModel

DECISIONS = ("sigmoid", "argmax")


class AnatSegmenterConfig(PretrainedConfig):
    model_type = "anat_attn_segmenter"
    sub_configs = {"backbone_config": DINOv3ConvNextConfig}

    def __init__(
        self,
        backbone_config: DINOv3ConvNextConfig | dict[str, Any] | None = None,
        num_classes: int = 1,
        decision: str = "sigmoid",
        target_class: int = 0,
        adapter_channels: int = 512,
        head_channels: tuple[int, int, int] | list[int] = (256, 128, 64),
        **kwargs: Any,
    ) -> None:
        if isinstance(backbone_config, dict):
            backbone_config = DINOv3ConvNextConfig(**backbone_config)
        # ConvNeXt-Small: hidden sizes are the config default, depths [3, 3, 27, 3]
        self.backbone_config = backbone_config or DINOv3ConvNextConfig(depths=[3, 3, 27, 3])
        self.num_classes = int(num_classes)
        self.decision = decision
        self.target_class = int(target_class)
        self.adapter_channels = int(adapter_channels)
        self.head_channels = list(head_channels)
        super().__init__(**kwargs)
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if len(self.head_channels) != 3:
            raise ValueError("head_channels needs three sizes (3x3 conv, two transposed convs)")

    @classmethod
    def lung(cls, **kwargs: Any) -> AnatSegmenterConfig:
        return cls(num_classes=1, decision="sigmoid", target_class=0, **kwargs)

    @classmethod
    def heart(cls, **kwargs: Any) -> AnatSegmenterConfig:
        return cls(num_classes=3, decision="argmax", target_class=2, **kwargs)


class AnatSegmenter(PreTrainedModel):
    config_class = AnatSegmenterConfig
    base_model_prefix = "segmenter"
    main_input_name = "pixel_values"

    def __init__(self, config: AnatSegmenterConfig) -> None:
        super().__init__(config)
        self.backbone = DINOv3ConvNextModel(config.backbone_config)
        c1, c2, c3 = config.head_channels
        self.channel_adapter = nn.Conv2d(config.backbone_config.hidden_sizes[-1], config.adapter_channels, 1)
        self.head = nn.Sequential(
            nn.Conv2d(config.adapter_channels, c1, 3, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, c2, 2, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c3, 2, stride=2),
            nn.ReLU(),
            nn.Conv2d(c3, config.num_classes, 1),
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_uniform_(module.weight, a=5**0.5)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, C, 4·h, 4·w) logits from the last stage's (B, C', h, w) feature map."""
        out = self.backbone(pixel_values, output_hidden_states=True)
        feats = next(h for h in reversed(out.hidden_states) if h.ndim == 4)
        return self.head(self.channel_adapter(feats))

    def binary_mask(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, H, W) float in {0, 1} by the model's decision rule."""
        if self.config.decision == "sigmoid":
            return (torch.sigmoid(logits[:, self.config.target_class]) > 0.5).float()
        return (logits.argmax(dim=1) == self.config.target_class).float()
