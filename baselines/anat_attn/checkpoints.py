"""anat_attn's checkpoint resolution and content hash: the shared ``baselines.common.checkpoints``
with anat_attn named in its messages (a record names weights by content, hub ids need a revision)."""

from __future__ import annotations

from pathlib import Path

from rrg_bench.baselines.common.checkpoints import CHECKPOINT_PATTERNS, checkpoint_sha256
from rrg_bench.baselines.common.checkpoints import resolve_checkpoint as _resolve

__all__ = ["CHECKPOINT_PATTERNS", "checkpoint_sha256", "resolve_checkpoint"]


def resolve_checkpoint(ref: str, revision: str | None = None, *, require_revision: bool = True) -> Path:
    """Local directory as is; otherwise download (or reuse the local HF cache of) ``ref`` at ``revision``."""
    return _resolve(ref, revision, require_revision=require_revision, model="anat_attn")
