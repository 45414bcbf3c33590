"""AM-MRG's two memories: built from the train split only, saved with provenance, loaded by sha256.

* Visual memory (V-Hopfield): the 14 stage-1 disease query tokens, then Grad-CAM patches of train
  images — per image and per positive observation, the ≤ 6 patches with mean CAM > 0.75, cropped,
  resized to the input size, re-encoded by the stage-1 Swin (pooled) and mapped to the Q-Former width
  by a seeded, never-trained ``Linear`` (as the authors do) — at most ``maps_num`` (500) per observation.
* Report memory (R-Hopfield): CLS embeddings (max 256 tokens) of train reports from a BERT
  (Bio_ClinicalBERT by default), grouped by positive observation and sampled in proportion to label
  frequency, ``total`` (6,000) in all.

Each memory is ``<name>.safetensors`` (tensor ``patterns``, (N, d)) plus ``<name>.json``: settings,
labeler, dataset/split and the source study of every row, and the sha256 of the tensor file. A
model records that sha256 and refuses a memory file with any other content. Every builder checks
that its studies all come from the train split it was given.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rrg_bench.api.types import Study
from rrg_bench.baselines.am_mrg.gradcam import PATCH_GRID, crop_patch, grad_cam, select_patches
from rrg_bench.baselines.am_mrg.stage1 import DiseaseClassifier
from rrg_bench.baselines.common.images import pixel_batch
from rrg_bench.errors import BenchError, UsageError
from rrg_bench.hashing import sha256_file as file_sha256
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS

VISUAL, REPORT = "visual", "report"
FORMAT = 1


class MemoryMismatch(BenchError):
    """A memory file's content is not the one the model was trained with."""


def check_train_only(studies: Sequence[Study], train_split: str, what: str) -> None:
    """Memories may only hold train-split material: refuse any other split, and the test split outright."""
    if train_split == "test":
        raise UsageError(f"am_mrg: the {what} must be built from a train split, not 'test'")
    wrong = [s.study_id for s in studies if s.split != train_split]
    if wrong:
        raise UsageError(f"am_mrg: {len(wrong)} studies given to the {what} are not from split {train_split!r}, "
                         f"e.g. {', '.join(wrong[:3])}")


def save_memory(directory: Path, name: str, patterns: torch.Tensor, provenance: dict[str, Any]) -> str:
    """Write ``<name>.safetensors`` + ``<name>.json`` (atomically); returns the tensor file's sha256."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{name}.safetensors.tmp"
    save_file({"patterns": patterns.detach().float().cpu().contiguous()}, str(tmp))
    digest = file_sha256(tmp)
    meta = {**provenance, "format": FORMAT, "name": name, "sha256": digest,
            "n": int(patterns.shape[0]), "dim": int(patterns.shape[1])}
    (directory / f"{name}.json.tmp").write_text(json.dumps(meta, indent=1, sort_keys=True))
    tmp.replace(directory / f"{name}.safetensors")
    (directory / f"{name}.json.tmp").replace(directory / f"{name}.json")
    return digest


def memory_provenance(directory: Path, name: str) -> dict[str, Any]:
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        raise UsageError(f"am_mrg: no {name} memory at {path}")
    return json.loads(path.read_text())


def load_memory(directory: Path, name: str, sha256: str | None = None) -> torch.Tensor:
    """The (N, d) patterns, after checking the file against ``sha256`` (or its own provenance record)."""
    path = Path(directory) / f"{name}.safetensors"
    if not path.is_file():
        raise UsageError(f"am_mrg: no {name} memory at {path}")
    expected = sha256 or memory_provenance(directory, name)["sha256"]
    actual = file_sha256(path)
    if actual != expected:
        raise MemoryMismatch(f"am_mrg: {path} has sha256 {actual[:16]}…, the model expects {expected[:16]}…; "
                             "the memory file was changed or belongs to another model")
    return load_file(str(path))["patterns"]


def copy_memory(source: Path, target: Path, name: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy2(Path(source) / f"{name}{suffix}", Path(target) / f"{name}{suffix}")


def memory_study_ids(directory: Path, name: str) -> set[str]:
    """Study ids that contributed a pattern (from the provenance rows)."""
    rows = memory_provenance(directory, name).get("rows", [])
    return {r["study_id"] for r in rows if r.get("study_id")}


# ------------------------------------------------------------------ visual memory
@torch.no_grad()
def _pooled(model: DiseaseClassifier, crops: list[torch.Tensor], device, batch_size: int) -> torch.Tensor:
    out = []
    for k in range(0, len(crops), batch_size):
        out.append(model.pooled_features(torch.stack(crops[k : k + batch_size]).to(device)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.encoder.num_features)


def build_visual_memory(
    model: DiseaseClassifier,
    images: Sequence[tuple[str, Path]],
    labels: np.ndarray,
    *,
    threshold: float,
    top_k: int,
    maps_num: int,
    seed: int,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Patterns (14 + ≤ 14·maps_num, H) and one provenance row per pattern. ``images[i]`` is
    (study id, image path) with binary ``labels[i]`` (14,)."""
    model = model.to(device).eval()
    c = model.config.image
    hidden = model.disease_tokens.shape[-1]
    rows: list[dict[str, Any]] = [{"kind": "disease_token", "observation": CHEXPERT_LABELS[j]}
                                  for j in range(model.config.num_queries)]
    crops: list[torch.Tensor] = []
    crop_rows: list[dict[str, Any]] = []
    for j in range(model.config.num_queries):
        positives = [i for i in range(len(images)) if labels[i, j] == 1]
        for k in range(0, len(positives), batch_size):
            chunk = positives[k : k + batch_size]
            pixels = pixel_batch([images[i][1] for i in chunk], c, [images[i][0] for i in chunk])
            cams = grad_cam(model, pixels.to(device), j).cpu()
            for i, pix, cam in zip(chunk, pixels, cams):
                for index, value in select_patches(cam, threshold, top_k, PATCH_GRID):
                    crops.append(crop_patch(pix, index, PATCH_GRID))
                    crop_rows.append({"kind": "cam_patch", "observation": CHEXPERT_LABELS[j], "study_id": images[i][0],
                                      "image": images[i][1].name, "patch": index, "cam_mean": round(value, 6)})
    # subsample per observation (authors: random, <= maps_num each), then re-encode only the kept crops
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for j in range(model.config.num_queries):
        mine = [i for i, r in enumerate(crop_rows) if r["observation"] == CHEXPERT_LABELS[j]]
        if len(mine) > maps_num:
            mine = sorted(rng.choice(mine, size=maps_num, replace=False).tolist())
        keep.extend(mine)
    pooled = _pooled(model, [crops[i] for i in keep], device, batch_size)
    generator = torch.Generator().manual_seed(seed)
    projection = torch.nn.Linear(pooled.shape[1] if len(keep) else model.encoder.num_features, hidden)
    with torch.no_grad():  # the authors' randomly initialised, never trained mapping (kaiming-uniform, seeded)
        bound = 1 / projection.in_features ** 0.5
        projection.weight.copy_(torch.empty_like(projection.weight).uniform_(-bound, bound, generator=generator))
        projection.bias.copy_(torch.empty_like(projection.bias).uniform_(-bound, bound, generator=generator))
        mapped = projection(pooled) if len(keep) else torch.zeros(0, hidden)
    patterns = torch.cat([model.disease_tokens[0].detach().float().cpu(), mapped])
    return patterns, rows + [crop_rows[i] for i in keep]


# ------------------------------------------------------------------ report memory
def sample_reports(labels: np.ndarray, total: int, seed: int) -> list[tuple[int, int]]:
    """(report index, observation) pairs: per positive observation, a share of ``total`` proportional
    to its frequency (at least 1 for a present label, at most the group size), drawn without replacement."""
    counts = labels.sum(axis=0)
    rng = np.random.default_rng(seed)
    picked: list[tuple[int, int]] = []
    for j in range(labels.shape[1]):
        group = np.flatnonzero(labels[:, j] == 1)
        if not len(group):
            continue
        quota = min(len(group), max(1, int(round(total * counts[j] / counts.sum()))))
        chosen = np.sort(rng.choice(group, size=quota, replace=False))
        picked.extend((int(i), j) for i in chosen)
    return picked


@torch.no_grad()
def embed_reports(texts: Sequence[str], encoder, tokenizer, *, max_length: int = 256, batch_size: int = 32,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """CLS vectors of the last layer, (n, d); identical texts are encoded once."""
    encoder = encoder.to(device).eval()
    unique = sorted(set(texts))
    vectors: dict[str, torch.Tensor] = {}
    for k in range(0, len(unique), batch_size):
        chunk = unique[k : k + batch_size]
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        cls = encoder(**enc).last_hidden_state[:, 0].float().cpu()
        vectors.update(zip(chunk, cls))
    if not texts:
        return torch.zeros(0, int(encoder.config.hidden_size))
    return torch.stack([vectors[t] for t in texts])


def build_report_memory(studies: Sequence[Study], labels: np.ndarray, encoder, tokenizer, *, total: int, seed: int,
                        max_length: int = 256, device: str | torch.device = "cpu"
                        ) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    picked = sample_reports(labels, total, seed)
    patterns = embed_reports([studies[i].reference for i, _ in picked], encoder, tokenizer, max_length=max_length,
                             device=device)
    rows = [{"kind": "report", "observation": CHEXPERT_LABELS[j], "study_id": studies[i].study_id} for i, j in picked]
    return patterns, rows
