"""Finding a checkpoint directory (local path or hub id at a pinned revision) and naming it by content.

A result is only reproducible if the record says which weights made it, so a generator's
fingerprint carries the sha256 of the checkpoint directory's files, not just its name. Hub ids must
come with a revision: "main" moves, a commit id does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rrg_bench.errors import UsageError
from rrg_bench.hashing import sha256_tree

if TYPE_CHECKING:
    import torch

#: files that describe weights and behaviour; training state (optimizer etc.) is not part of a model
CHECKPOINT_PATTERNS = ("*.safetensors", "*.bin", "*.json", "*.txt", "*.model")


def resolve_checkpoint(ref: str, revision: str | None = None, *, require_revision: bool = True,
                       model: str = "checkpoint") -> Path:
    """Local directory as is; otherwise download (or reuse the local HF cache of) ``ref`` at ``revision``.

    ``model`` names the generator in error messages (``anat_attn``, ``am_mrg``)."""
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UsageError(f"checkpoint {path} has no config.json (expected a save_pretrained directory)")
        return path.resolve()
    if "/" not in ref or ref.startswith((".", "/", "~")):
        raise UsageError(f"checkpoint {ref!r}: no such directory (and it does not look like a hub id 'owner/name')")
    if require_revision and not revision:
        raise UsageError(f"checkpoint {ref!r} is a hub id: pin it with revision=<commit sha> for a reproducible run")
    from rrg_bench.weights import hub_snapshot

    return hub_snapshot(ref, revision, local_files_only=False, who=f"{model} checkpoint",
                        fix="Download it where the Hub is reachable and pass checkpoint=<local directory>.")


def checkpoint_sha256(directory: Path, patterns: Sequence[str] = CHECKPOINT_PATTERNS) -> str:
    """Hash of the weight, config and tokenizer files (relative path + content) under ``directory``."""
    return sha256_tree(Path(directory), tuple(patterns))


def state_dict_sha256(module: torch.nn.Module) -> str:
    """Content hash of a module's weights (names, shapes, dtypes, bytes), device independent."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}\0{tuple(t.shape)}\0{t.dtype}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
