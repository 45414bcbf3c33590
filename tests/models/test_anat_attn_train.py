"""anat_attn training: the tiny model learns IU X-Ray reports, and resume is exact.

Images are synthetic stand-ins drawn at IU X-Ray's R2Gen paths (tests/helpers/iu_images.py) with
lung/heart masks drawn next to them; the reports are the real R2Gen train reports read from the
shared data folder into a temporary data root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from rrg_bench.api.training import TrainRequest
from rrg_bench.baselines.anat_attn.presets import resolve_recipe
from rrg_bench.baselines.anat_attn.train import train
from rrg_bench.errors import UsageError

N_TRAIN, N_VAL = 32, 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def draw_mask(path: Path, seed: int, size: int = 128) -> None:
    """Two lung ellipses and a heart, jittered per study."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    dx, dy = rng.normal(0, 0.02, 2)
    lungs = (((x - 0.3 - dx) / 0.15) ** 2 + ((y - 0.5 - dy) / 0.32) ** 2 < 1) | (
        ((x - 0.7 - dx) / 0.15) ** 2 + ((y - 0.5 - dy) / 0.32) ** 2 < 1
    )
    heart = ((x - 0.55 - dx) / 0.13) ** 2 + ((y - 0.68 - dy) / 0.12) ** 2 < 1
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(((lungs | heart) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def iu_data(make_iu_root):
    from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen

    root = make_iu_root({"train": N_TRAIN, "val": N_VAL})
    dataset = IUXrayR2Gen(root)
    masks = root / "masks"
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for k, study in enumerate(dataset.studies(split)[:n]):
            rel = study.frontal_image.relative_to(root / "images")
            draw_mask(masks / rel, k)
    return dataset, masks


def request(dataset, out: Path, masks: Path, **overrides: str) -> TrainRequest:
    base = {
        "masks": "files", "mask_dir": str(masks), "epochs": "20", "val_limit": str(N_VAL),
        "save_every_steps": "40", "eval_every_steps": "40", "tiny_text_positions": "64",
    }
    return TrainRequest(dataset=dataset, output_dir=out, preset="tiny", limit=N_TRAIN, progress=False,
                        overrides={**base, **overrides})


def steps(log: Path) -> list[dict]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["event"] == "step"]


@pytest.fixture(scope="module")
def uninterrupted(iu_data, tmp_path_factory):
    dataset, masks = iu_data
    out = tmp_path_factory.mktemp("run") / "a"
    return train(request(dataset, out, masks)), out


def test_training_loss_falls_by_half_and_writes_checkpoints(uninterrupted):
    best, out = uninterrupted
    log = steps(out / "loss_log.jsonl")
    assert [r["step"] for r in log] == list(range(1, 81))
    first, last = np.mean([r["loss"] for r in log[:2]]), np.mean([r["loss"] for r in log[-2:]])
    assert last <= first / 2, (first, last)
    assert best == out / "best" and (best / "model.safetensors").is_file() and (best / "tokenizer.json").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000040", "step-00000080"]
    evals = [r for r in map(json.loads, (out / "loss_log.jsonl").read_text().splitlines()) if r["event"] == "eval"]
    assert [e["step"] for e in evals] == [40, 80] and evals[-1]["val_loss"] < evals[0]["val_loss"] * 1.5
    info = json.loads((best / "anat_attn_training.json").read_text())
    assert info["preset"] == "tiny" and info["masks"]["source"]["kind"] == "files"
    cache = list((out / "feature_cache").iterdir())
    assert len(cache) == 2  # train + val, encoder run once each


def test_resume_from_the_midway_checkpoint_ends_with_identical_weights(iu_data, uninterrupted, tmp_path):
    dataset, masks = iu_data
    _, out_a = uninterrupted
    out_b = tmp_path / "b"
    shutil.copytree(out_a, out_b, ignore=shutil.ignore_patterns("step-00000080", "best", "final"))
    train(request(dataset, out_b, masks))
    a = load_file(out_a / "final" / "model.safetensors")
    b = load_file(out_b / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["loss"] for r in steps(out_b / "loss_log.jsonl")] == [r["loss"] for r in steps(out_a / "loss_log.jsonl")]


def test_resume_refuses_a_changed_recipe(iu_data, uninterrupted, tmp_path):
    dataset, masks = iu_data
    _, out_a = uninterrupted
    out_c = tmp_path / "c"
    shutil.copytree(out_a, out_c, ignore=shutil.ignore_patterns("feature_cache", "mask_cache"))
    with pytest.raises(UsageError, match="recipe"):
        train(request(dataset, out_c, masks, lr="1e-3"))


def test_overrides_are_type_checked():
    name, recipe = resolve_recipe("paper", {"lr": "1e-4", "grad_clip": "none", "shuffle": "false", "patience": "3"})
    assert name == "paper" and recipe.lr == 1e-4 and recipe.grad_clip is None and recipe.shuffle is False
    assert recipe.attention_mode == "soft" and recipe.max_batches_per_epoch == 101 and recipe.patience == 3
    with pytest.raises(UsageError, match="lr"):
        resolve_recipe("paper", {"lr": "fast"})
    with pytest.raises(UsageError, match="Did you mean"):
        resolve_recipe("paper", {"epoch": "1"})
    with pytest.raises(UsageError, match="Options: .*warmup_ratio"):
        resolve_recipe("paper", {"learning_rat": "1"})
    with pytest.raises(UsageError, match="one of"):
        resolve_recipe("paper", {"attention_mode": "strong"})
    with pytest.raises(UsageError, match="unknown preset"):
        resolve_recipe("papr", {})
    assert resolve_recipe("cloud", {})[1].attention_mode == "hidden"


def test_two_process_ddp_training_with_torchrun(iu_data, tmp_path):
    """`accelerate launch --cpu` starts a single process, so CPU multi-process DDP goes through torchrun."""
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to the interpreter")
    dataset, masks = iu_data
    out = tmp_path / "ddp"
    sets = {"masks": "files", "mask_dir": str(masks), "epochs": "2", "val_limit": str(N_VAL),
            "tiny_text_positions": "64"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "rrg_bench", "train", "--model", "anat_attn",
           "--dataset", "iu_xray/r2gen", "--data-root", str(dataset.data_root), "--preset", "tiny",
           "--limit", str(N_TRAIN), "--output", str(out), "--no-progress"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "BENCH_DATA_ROOT"}
    env.update(ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "recipe.json").read_text())["num_processes"] == 2
    # 32 studies / batch 8 = 4 batches per epoch, sharded over 2 processes: 2 optimizer steps per epoch
    assert [r["step"] for r in steps(out / "loss_log.jsonl")] == [1, 2, 3, 4]
    assert (out / "best" / "model.safetensors").is_file() and (out / "final" / "model.safetensors").is_file()
