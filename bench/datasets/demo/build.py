"""Maintainer tool: ``build_demo`` writes the demo dataset — template reports and drawn images.

Why a builder and not just files: the shipped copy must be reproducible from a seed, byte for
byte (a test rebuilds it and compares every file). Only stdlib ``random`` (Mersenne Twister)
picks the findings and phrasings; the images come from ``drawing``, which is deterministic too.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from rrg_bench.datasets.demo.dataset import NAME, REPORTS_FILE, SHIPPED_DATA, SPLIT_SIZES, SPLITS
from rrg_bench.datasets.demo.drawing import VIEWS, draw_xray, png_bytes, seed_for
from rrg_bench.datasets.demo.findings import Findings, parse_findings
from rrg_bench.manifests import atomic_write, jsonl_bytes, sha256_bytes, sha256_text, write_manifest_dir

#: the builder's name as the shipped manifest.yaml records it; part of the committed bytes, so it
#: keeps the module path the demo was first built under
BUILDER = "bench.datasets.demo.build_demo"

# ----------------------------------------------------------------------------- reports

_TEMPLATES = {
    "heart_normal": ["The heart size is normal.", "The cardiomediastinal silhouette is within normal limits."],
    "cardiomegaly": ["The heart is enlarged.", "There is moderate cardiomegaly."],
    "lungs_clear": ["The lungs are clear.", "The lungs are clear without focal consolidation."],
    "consolidation": ["There is focal consolidation in the {side} lower lobe.",
                      "Patchy airspace opacity at the {side} lung base."],
    "atelectasis": ["Mild {side} basilar atelectasis.", "Linear atelectasis at the {side} base."],
    "atelectasis_both": ["Mild bibasilar atelectasis."],
    "pleura_normal": ["No pleural effusion or pneumothorax.", "There is no pleural effusion or pneumothorax."],
    "effusion": ["Small {side} pleural effusion.",
                 "There is a {side} pleural effusion with blunting of the costophrenic angle."],
    "pneumothorax": ["There is a small {side} apical pneumothorax.", "A {side} pneumothorax is present."],
    "no_pneumothorax": ["No pneumothorax."],
    "no_effusion": ["No pleural effusion."],
    "et_tube": ["An endotracheal tube terminates 4 cm above the carina.",
                "The endotracheal tube is in standard position."],
    "pacemaker": ["A left chest wall pacemaker is present with leads in the right atrium and right ventricle."],
    "central_line": ["A right internal jugular central venous catheter terminates in the superior vena cava."],
    "bones": ["No acute osseous abnormality."],
}
_FINDING_WEIGHTS = [("cardiomegaly", 3), ("effusion", 3), ("pneumothorax", 2), ("consolidation", 3),
                    ("atelectasis", 2), ("device", 2)]


def _sample_findings(rng: random.Random) -> Findings:
    if rng.random() < 0.3:
        return Findings()
    kinds = [k for k, _ in _FINDING_WEIGHTS]
    weights = [w for _, w in _FINDING_WEIGHTS]
    chosen: set[str] = set()
    for _ in range(1 if rng.random() < 0.6 else 2):
        chosen.add(rng.choices(kinds, weights)[0])

    def side() -> frozenset[str]:
        return frozenset({rng.choice(("left", "right"))})

    both = frozenset({"left", "right"})
    devices = ("et_tube", "pacemaker", "central_line")
    return Findings(
        cardiomegaly="cardiomegaly" in chosen,
        effusion=side() if "effusion" in chosen else frozenset(),
        pneumothorax=side() if "pneumothorax" in chosen else frozenset(),
        consolidation=side() if "consolidation" in chosen else frozenset(),
        atelectasis=(both if rng.random() < 0.3 else side()) if "atelectasis" in chosen else frozenset(),
        devices=frozenset({rng.choice(devices)}) if "device" in chosen else frozenset(),
    )


def compose_report(findings: Findings, rng: random.Random) -> str:
    """A findings paragraph for ``findings`` from the templates above."""

    def pick(key: str, **kw: str) -> str:
        return rng.choice(_TEMPLATES[key]).format(**kw)

    def one(sides: frozenset[str]) -> str:
        return next(iter(sides))

    parts = [pick(d) for d in sorted(findings.devices)]
    parts.append(pick("cardiomegaly") if findings.cardiomegaly else pick("heart_normal"))
    if findings.consolidation:
        parts.append(pick("consolidation", side=one(findings.consolidation)))
    if findings.atelectasis:
        both = len(findings.atelectasis) == 2
        parts.append(pick("atelectasis_both") if both else pick("atelectasis", side=one(findings.atelectasis)))
    if not findings.consolidation and not findings.atelectasis:
        parts.append(pick("lungs_clear"))
    if findings.effusion:
        parts.append(pick("effusion", side=one(findings.effusion)))
    if findings.pneumothorax:
        parts.append(pick("pneumothorax", side=one(findings.pneumothorax)))
    if findings.effusion and not findings.pneumothorax:
        parts.append(pick("no_pneumothorax"))
    elif findings.pneumothorax and not findings.effusion:
        parts.append(pick("no_effusion"))
    elif not findings.effusion and not findings.pneumothorax:
        parts.append(pick("pleura_normal"))
    if rng.random() < 0.5:
        parts.append(pick("bones"))
    return " ".join(parts)


# ----------------------------------------------------------------------------- builder


def build_demo(out_dir: Path, seed: int = 0) -> Path:
    """Write the demo dataset (manifest.yaml, <split>.jsonl, data/reports.jsonl, data/images/*.png).

    Maintainer tool: ``build_demo(Path("data_manifests/demo"))`` regenerates the shipped copy.
    """
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    reports: list[dict[str, str]] = []
    images: dict[str, bytes] = {}
    for split in SPLITS:
        rows = []
        for n in range(1, SPLIT_SIZES[split] + 1):
            sid = f"demo-{split}-{n:03d}"
            text = compose_report(_sample_findings(rng), rng)
            study_seed = seed_for(sid, seed)
            rels = [f"images/{sid}_{view}.png" for view in VIEWS]
            for k, (view, rel) in enumerate(zip(VIEWS, rels)):
                images[rel] = png_bytes(draw_xray(text, study_seed + 7919 * k, view))
            reports.append({"study_id": sid, "findings": text})
            rows.append({
                "study_id": sid,
                "images": rels,
                "frontal": rels[0],
                "labels": parse_findings(text, study_seed).labels(),
                "reference_sha256": sha256_text(text),
                "image_sha256": [sha256_bytes(images[r]) for r in rels],
            })
        rows_by_split[split] = rows
    data_dir = out_dir / SHIPPED_DATA
    atomic_write(data_dir / REPORTS_FILE, jsonl_bytes(reports))
    for rel, data in images.items():
        atomic_write(data_dir / rel, data)
    header = {
        "name": NAME,
        "version": "1",
        "description": (
            "Synthetic chest X-ray studies written by rrg-bench: template findings reports and drawn "
            "128x128 grayscale frontal + lateral images whose shapes follow the findings. For smoke tests "
            "and first runs; numbers on it say nothing about clinical performance."
        ),
        "reference_policy": "findings",
        "reference_policy_detail": "the 'findings' text of data/reports.jsonl exactly as stored",
        "view_policy": "two images per study, images/<id>_frontal.png (frontal) and images/<id>_lateral.png",
        "sources": [{"file": f"{SHIPPED_DATA}/{REPORTS_FILE}", "sha256": sha256_bytes(jsonl_bytes(reports)),
                     "role": "reference text", "origin": f"{BUILDER}(seed={seed})"}],
        "exclusions": {},
        "builder": {"function": BUILDER, "seed": seed},
    }
    return write_manifest_dir(out_dir, header, rows_by_split)
