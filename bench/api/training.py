"""What ``bench train`` hands a trainable generator: the data, where to write, and overrides.

Kept model-agnostic so each published model owns its recipe (presets, optimiser, schedule)
while the CLI, data loading and output conventions stay the same for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrg_bench.api.dataset import Dataset


@dataclass
class TrainRequest:
    dataset: Dataset
    output_dir: Path
    train_split: str = "train"
    val_split: str = "val"
    preset: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)  # --set key=value
    resume: bool = True
    device: str = "cpu"
    seed: int = 0
    limit: int | None = None  # use only the first N train studies (tests, smoke runs)
    progress: bool = True
    stage: int | None = None  # multi-stage recipes (am_mrg, s2d_align)
    extra: dict[str, Any] = field(default_factory=dict)
