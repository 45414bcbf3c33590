"""Finding a checkpoint directory (local path or hub id at a pinned revision) and naming it by content.

A result is only reproducible if the record says which weights made it, so the generator's
fingerprint carries the sha256 of the checkpoint directory's files, not just its name. Hub ids must
come with a revision: "main" moves, a commit id does not.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import UsageError, WeightsUnavailable
from bench.fingerprint import sha256_tree

#: files that describe weights and behaviour; training state (optimizer etc.) is not part of a model
CHECKPOINT_PATTERNS = ("*.safetensors", "*.bin", "*.json", "*.txt", "*.model")


def resolve_checkpoint(ref: str, revision: str | None = None, *, require_revision: bool = True) -> Path:
    """Local directory as is; otherwise download (or reuse the local HF cache of) ``ref`` at ``revision``."""
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UsageError(f"checkpoint {path} has no config.json (expected a save_pretrained directory)")
        return path.resolve()
    if "/" not in ref or ref.startswith((".", "/", "~")):
        raise UsageError(f"checkpoint {ref!r}: no such directory (and it does not look like a hub id 'owner/name')")
    if require_revision and not revision:
        raise UsageError(f"checkpoint {ref!r} is a hub id: pin it with revision=<commit sha> for a reproducible run")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(ref, revision=revision))
    except Exception as exc:  # offline, gated, unknown revision: all the user's to fix
        raise WeightsUnavailable(
            f"anat_attn: cannot fetch {ref}@{revision} from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            "Download it where the Hub is reachable and pass checkpoint=<local directory>."
        ) from None


def checkpoint_sha256(directory: Path) -> str:
    """Hash of the weight, config and tokenizer files (relative path + content) under ``directory``."""
    return sha256_tree(Path(directory), CHECKPOINT_PATTERNS)
