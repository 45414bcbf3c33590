"""What a user asks for (``RunSpec``) and how the harness should do it (``RunOptions``), checked
up front: a bad ``--n-boot`` or an absent GPU must fail before an hour of generation, not after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rrg_bench.errors import UsageError


@dataclass
class RunSpec:
    """Everything that changes the numbers of ``bench run``."""

    dataset: str
    split: str
    model: str
    model_params: dict[str, str] = field(default_factory=dict)
    #: canonical scorer specs, suites already expanded (``rrg_bench.specs.expand_metrics``)
    metrics: list[str] = field(default_factory=lambda: ["nlg"])
    seed: int = 0
    limit: int | None = None
    #: images from a Hugging Face dataset (``hf:ID_OR_PATH[:split]``) instead of files under the data root
    images: str | None = None
    image_id_col: str = "study_id"
    image_col: str = "image"


@dataclass
class RunOptions:
    """How to run it: none of these changes a number (``n_boot`` changes only the CIs, and is recorded)."""

    runs_dir: Path = Path("runs")
    data_root: Path | None = None
    device: str = "cpu"
    batch_size: int = 8
    n_boot: int = 1000
    progress: bool = True
    fresh: bool = False
    #: worker processes a scorer may use (METEOR JVMs for ``nlg``); None = each scorer's default
    workers: int | None = None


def check_options(opts: RunOptions, limit: int | None = None) -> None:
    """Refuse impossible settings before any work starts (one line naming the option)."""
    if opts.batch_size <= 0:
        raise UsageError(f"--batch-size must be a positive number of studies, got {opts.batch_size}")
    if opts.n_boot < 0:
        raise UsageError(f"--n-boot must be 0 (no CIs) or a positive number of resamples, got {opts.n_boot}")
    if limit is not None and limit <= 0:
        raise UsageError(f"--limit must be a positive number of studies, got {limit}")
    if opts.workers is not None and opts.workers <= 0:
        raise UsageError(f"--workers must be a positive number of processes, got {opts.workers}")
    check_device(opts.device)


def check_device(device: str) -> None:
    """``cpu``, or an accelerator that this machine really has (never recorded if it is absent)."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return
    if kind not in {"cuda", "mps"} or (index and not index.isdigit()):
        raise UsageError(f"--device {device!r}: expected cpu, cuda, cuda:N or mps")
    try:
        import torch
    except ImportError:
        raise UsageError(f"--device {device}: PyTorch is not installed (pip install 'rrg-bench[models]')") from None
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("--device mps: this machine has no usable Apple GPU; use --device cpu")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise UsageError(f"--device {device}: no CUDA device is visible on this machine; use --device cpu")
    if index and int(index) >= count:
        raise UsageError(f"--device {device}: this machine has {count} CUDA device(s) (cuda:0 … cuda:{count - 1})")
