"""The record's ``dataset`` block: which manifest, which split, which references — built once.

Why one function: every dataset (shipped manifest, ReXrank policy, locally prepared
credentialed data) must describe its references the same way, or two records of the same
references would not compare equal. The block needs no data root: the hashes come from the
manifest rows, never from the user's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rrg_bench.hashing import canonical_json, sha256_text

if TYPE_CHECKING:
    from rrg_bench.manifests.manifest import Manifest


def references_sha256(pairs: Iterable[tuple[str, str]]) -> str:
    """sha256 of the canonical JSON of the ordered ``[[study_id, reference_sha256], ...]`` list.

    Order matters on purpose: it is the split's order, the order predictions are reported in.
    """
    return sha256_text(canonical_json([[sid, ref] for sid, ref in pairs]))


def study_ids_sha256(study_ids: Iterable[str]) -> str:
    """sha256 of the canonical JSON of the ordered list of study ids."""
    return sha256_text(canonical_json(list(study_ids)))


def identity_block(manifest: Manifest, split: str, rows: Sequence[Mapping[str, Any]] | None, *,
                   name: str | None = None, reference_policy: str | None = None,
                   hash_key: str = "reference_sha256") -> dict[str, Any]:
    """The ``dataset`` block for ``rows`` of ``manifest``'s ``split``.

    ``name`` and ``reference_policy`` default to the manifest's; a dataset that shares a
    manifest with another policy (ReXrank's findings-only track) names its own and the row key
    holding its hashes (``hash_key``). ``rows=None``: the study list is not known yet
    (credentialed data not prepared), so the policies are recorded and the hashes are None.
    """
    counts: dict[str, Any] = {"n_expected": None, "study_ids_sha256": None, "references_sha256": None}
    if rows is not None:
        counts = {
            "n_expected": len(rows),
            "study_ids_sha256": study_ids_sha256(r["study_id"] for r in rows),
            "references_sha256": references_sha256((r["study_id"], r[hash_key]) for r in rows),
        }
    return {
        "name": name or manifest.name,
        "manifest_version": manifest.version,
        "manifest_sha256": manifest.sha256,
        "split": split,
        "reference_policy": reference_policy or manifest.reference_policy,
        **counts,
    }
