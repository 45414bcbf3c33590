"""Loading an anat_attn checkpoint: the model, its tokenizer and the segmenters it may bundle.

Layout of a checkpoint directory (``save_pretrained`` + tokenizer; written by training, by
``tiny.save_checkpoint`` and by ``importer`` from the authors' legacy file)::

    config.json  model.safetensors  tokenizer files  segmenters/{lung,heart}/ (optional)

Hub ids go through the shared ``baselines.common.checkpoints`` with anat_attn named in its messages
(a record names weights by content; hub ids need a revision).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.baselines.common.checkpoints import resolve_checkpoint as _resolve

if TYPE_CHECKING:
    from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration

SEGMENTERS = "segmenters"


def resolve_checkpoint(ref: str, revision: str | None = None, *, require_revision: bool = True) -> Path:
    """Local directory as is; otherwise download (or reuse the local HF cache of) ``ref`` at ``revision``."""
    return _resolve(ref, revision, require_revision=require_revision, model="anat_attn")


def bundled_segmenters(directory: Path) -> Path | None:
    """``directory`` when it bundles ``segmenters/`` (what ``masks=auto`` looks for), else None."""
    return directory if (Path(directory) / SEGMENTERS).is_dir() else None


def load_model(directory: Path, **config_overrides: Any) -> tuple[AnatAttnForReportGeneration, Any]:
    """(model on CPU, tokenizer) of a checkpoint directory; ``config_overrides`` go to
    ``from_pretrained`` (``dtype``, or mechanism switches when training starts from a checkpoint)."""
    from transformers import AutoTokenizer

    from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration

    model = AnatAttnForReportGeneration.from_pretrained(directory, **config_overrides)
    return model, AutoTokenizer.from_pretrained(directory)


def save_checkpoint(model: AnatAttnForReportGeneration, tokenizer: Any, out_dir: Path,
                    segmenters: Mapping[str, Any] | None = None) -> Path:
    """Write the layout above: model, tokenizer and the given segmenters by role (``lung``, ``heart``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    for role, segmenter in (segmenters or {}).items():
        if segmenter is not None:
            segmenter.save_pretrained(out_dir / SEGMENTERS / role)
    return out_dir
