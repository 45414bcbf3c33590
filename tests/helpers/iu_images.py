"""Synthetic stand-in images at IU X-Ray's R2Gen paths (the shared data has no images)."""

from __future__ import annotations

from pathlib import Path

from rrg_bench.datasets.demo.drawing import seed_for, write_synthetic_images
from rrg_bench.manifests import load_manifest


def write_iu_images(root: Path, split: str, limit: int | None = None) -> list[str]:
    """Draw a frontal image at each study's manifest frontal path and a lateral at the other.

    The drawing follows the study's reference text from ``root``'s annotation.json, so
    image retrieval has something real to find. Returns the study ids drawn.
    """
    from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen

    rows = load_manifest("iu_xray/r2gen").rows(split)[:limit]
    texts = {s.study_id: s.reference for s in IUXrayR2Gen(root).studies(split)}
    for row in rows:
        others = [root / p for p in row["images"] if p != row["frontal"]]
        write_synthetic_images(texts[row["study_id"]], seed_for(row["study_id"]), root / row["frontal"], others)
    return [r["study_id"] for r in rows]
