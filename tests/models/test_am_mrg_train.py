"""am_mrg end to end on the tiny config: stage 1, stage 2, ``bench run`` and a 2-process run.

Images are synthetic stand-ins drawn at IU X-Ray's R2Gen paths (tests/helpers/iu_images.py); the
reports are the real R2Gen reports read from the shared data folder into a temporary data root.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.training import TrainRequest
from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig
from rrg_bench.baselines.am_mrg.generate import AMMRGGenerator
from rrg_bench.baselines.am_mrg.memory import file_sha256, memory_provenance, memory_study_ids
from rrg_bench.baselines.am_mrg.train import train
from rrg_bench.errors import UsageError
from rrg_bench.registry import registry

N_TRAIN, N_VAL, N_TEST = 32, 8, 20
ACCELERATE = Path(sys.executable).parent / "accelerate"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(make_iu_root):
    from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen

    return IUXrayR2Gen(make_iu_root({"train": N_TRAIN, "val": N_VAL, "test": N_TEST}))


def steps(log: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, log.read_text().splitlines()) if r["event"] == "step"]


def halved(losses: list[float]) -> bool:
    return np.mean(losses[-2:]) <= np.mean(losses[:2]) / 2


@pytest.fixture(scope="module")
def stage1(dataset, tmp_path_factory):
    """The tiny classifier on synthetic images has Grad-CAM magnitudes near pytorch-grad-cam's 1e-7
    epsilon, which flattens its maps to about 0.5 after min-max scaling, so the paper's 0.75 threshold
    (unit-tested in test_am_mrg_mechanism.py) is lowered here to let patches into the memory."""
    out = tmp_path_factory.mktemp("run") / "stage1"
    checkpoint = train(TrainRequest(dataset=dataset, output_dir=out, preset="tiny", stage=1, limit=N_TRAIN,
                                    progress=False,
                                    overrides={"epochs": "15", "val_limit": str(N_VAL), "cam_threshold": "0.3"}))
    return checkpoint, out


@pytest.fixture(scope="module")
def stage2(dataset, stage1, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "stage2"
    checkpoint = train(TrainRequest(dataset=dataset, output_dir=out, preset="tiny", stage=2, limit=N_TRAIN,
                                    progress=False,
                                    overrides={"stage1": str(stage1[0]), "epochs": "20", "val_limit": str(N_VAL)}))
    return checkpoint, out


def test_registered_as_an_image_generator_with_a_two_stage_trainer():
    from rrg_bench.baselines import TRAINERS

    assert registry("generators").get("am_mrg") is AMMRGGenerator and AMMRGGenerator.needs_images
    assert TRAINERS["am_mrg"].target == "rrg_bench.baselines.am_mrg.train:train"


def test_stage1_loss_halves_and_the_visual_memory_holds_train_studies_only(dataset, stage1):
    checkpoint, out = stage1
    losses = steps(out / "loss_log.jsonl")
    assert len(losses) == 15 * 2 * N_TRAIN // 8  # two images per IU X-Ray study, batch 8
    assert halved(losses), (losses[:2], losses[-2:])
    meta = memory_provenance(checkpoint / "memories", "visual")
    assert meta["split"] == "train" and meta["labeler"]["labeler"] == "chexpert_rules"
    rows = meta["rows"]
    assert [r["kind"] for r in rows[:14]] == ["disease_token"] * 14 and len(rows) == meta["n"] > 14
    per_obs = {}
    for r in rows[14:]:
        per_obs[r["observation"]] = per_obs.get(r["observation"], 0) + 1
        assert r["cam_mean"] > 0.3 and 0 <= r["patch"] < 196
    assert max(per_obs.values()) <= 2  # maps_num of the tiny preset
    train_ids = {s.study_id for s in dataset.studies("train")[:N_TRAIN]}
    test_ids = {s.study_id for s in dataset.studies("test")}
    used = memory_study_ids(checkpoint / "memories", "visual")
    assert used and used <= train_ids and not used & test_ids


def test_stage2_loss_halves_and_both_memories_come_from_train_only(dataset, stage1, stage2):
    checkpoint, out = stage2
    losses = steps(out / "loss_log.jsonl")
    assert len(losses) == 20 * N_TRAIN // 8 and halved(losses), (losses[:2], losses[-2:])
    config = AMMRGConfig.load(checkpoint)
    memories = checkpoint / "memories"
    assert config.visual_memory_sha256 == file_sha256(memories / "visual.safetensors") \
        == memory_provenance(stage1[0] / "memories", "visual")["sha256"]
    assert config.report_memory_sha256 == file_sha256(memories / "report.safetensors")
    train_ids = {s.study_id for s in dataset.studies("train")[:N_TRAIN]}
    test_ids = {s.study_id for s in dataset.studies("test")}
    for name in ("visual", "report"):
        used = memory_study_ids(memories, name)
        assert used and used <= train_ids and not used & test_ids, name
    assert memory_provenance(memories, "report")["settings"]["embedding"] == "CLS of the last layer"


def test_generator_refuses_a_study_held_in_its_memories(dataset, stage2):
    gen = AMMRGGenerator(checkpoint=str(stage2[0]))
    gen.setup(GeneratorContext(dataset="iu_xray/r2gen", split="train", progress=False))
    held = memory_study_ids(stage2[0] / "memories", "report")
    study = next(s for s in dataset.studies("train") if s.study_id in held)
    with pytest.raises(UsageError, match="memories"):
        gen.generate([study], [0])
    tests = dataset.studies("test")[:3]
    together = gen.generate(tests, [0] * 3)
    assert [g.text for g in together] == [gen.generate([s], [0])[0].text for s in tests]


def test_bench_run_writes_a_full_record_and_two_processes_give_the_same_predictions(dataset, stage2, tmp_path):
    from helpers.bench_cli import bench_env
    from rrg_bench.cli import app

    args = ["run", "--model", "am_mrg", "--checkpoint", str(stage2[0]), "--dataset", "iu_xray/r2gen", "--split", "test",
            "--data-root", str(dataset.data_root), "--limit", str(N_TEST), "--batch-size", "4", "--metrics", "nlg",
            "--n-boot", "0", "--no-progress"]
    result = CliRunner().invoke(app, args + ["--runs-dir", str(tmp_path / "single")])
    assert result.exit_code == 0, result.output
    record = json.loads(next((tmp_path / "single").rglob("results.json")).read_text())
    assert record["predictions"]["n"] == N_TEST and "bleu4[tok=ptb]" in record["metrics"]
    fingerprint = AMMRGGenerator(checkpoint=str(stage2[0])).fingerprint()
    assert fingerprint["checkpoint_sha256"] in json.dumps(record)
    assert fingerprint["decoding"]["num_beams"] == 3 and fingerprint["encoder"]["prefix_tokens"] == 17 + 42
    single = next((tmp_path / "single").rglob("predictions.jsonl")).read_bytes()
    assert single.count(b"\n") == N_TEST

    if not ACCELERATE.exists():
        pytest.skip("accelerate is not installed in this environment")
    cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rrg_bench", *args,
           "--runs-dir", str(tmp_path / "multi")]
    proc = subprocess.run(cmd, env={**bench_env(), "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert next((tmp_path / "multi").rglob("predictions.jsonl")).read_bytes() == single
    assert json.loads(next((tmp_path / "multi").rglob("results.json")).read_text())["run"]["world_size"] == 2


def test_tiny_paper_trains_arm_with_the_authors_schedule_selection_and_text(dataset, stage1, tmp_path):
    """The paper preset's switches end to end on tiny models: ARM encoder, BLIP-2 Q-Former from a LAVIS
    file, per-epoch cosine to min_lr, validation by generation every half epoch, ``best/`` by BLEU-4."""
    import torch
    from transformers import Blip2QFormerModel

    from helpers.am_mrg_blip2 import lavis_qformer_state
    from rrg_bench.baselines.am_mrg.tiny import tiny_qformer_config
    from rrg_bench.baselines.common.trainloop import epoch_cosine_factor
    from rrg_bench.baselines.common.vision import build_hf_config

    blip2 = tmp_path / "blip2_pretrained_flant5xxl.pth"
    torch.save({"model": lavis_qformer_state(Blip2QFormerModel(build_hf_config(tiny_qformer_config(32))))}, blip2)
    out = tmp_path / "paper"
    checkpoint = train(TrainRequest(dataset=dataset, output_dir=out, preset="tiny_paper", stage=2, limit=N_TRAIN,
                                    progress=False, overrides={"stage1": str(stage1[0]), "epochs": "2",
                                                               "val_limit": "4", "qformer_init": str(blip2)}))
    log = [json.loads(line) for line in (out / "loss_log.jsonl").read_text().splitlines()]
    evals = [r for r in log if r["event"] == "eval"]
    per_epoch = N_TRAIN // 8
    assert [r["step"] for r in evals] == [per_epoch // 2, per_epoch, 3 * per_epoch // 2, 2 * per_epoch]
    best = max(evals, key=lambda r: r["val_score"])
    info = json.loads((checkpoint / "am_mrg_training.json").read_text())
    assert checkpoint == out / "best" and info["step"] == best["step"] and info["best_val_bleu4"] == best["val_score"]
    lrs = [r["lr"] for r in log if r["event"] == "step"]
    epochs_after_step = [(s + 1) // per_epoch for s in range(2 * per_epoch)]
    assert lrs == pytest.approx([5e-3 * epoch_cosine_factor(e, 2, 1e-4 / 5e-3) for e in epochs_after_step])
    config = AMMRGConfig.load(checkpoint)
    assert config.vision_config["model_type"] == "arm" and config.trained_on["report_text"] == "r2gen_clean"
    assert config.trained_on["init"]["qformer"]["layout"] == "lavis" and config.trained_on["select_by"] == "val_bleu4"
