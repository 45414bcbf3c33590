"""S2D-Align's three-stage curriculum end to end on the tiny config, then ``bench run``.

Images are synthetic stand-ins at IU X-Ray's R2Gen paths (tests/helpers/iu_images.py); reports are
the real R2Gen train reports read from the shared data folder into a temporary data root.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.training import TrainRequest
from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig
from rrg_bench.baselines.s2d_align.generate import S2DAlignGenerator
from rrg_bench.baselines.s2d_align.loading import load_model
from rrg_bench.baselines.s2d_align.model import BANK_KEY, bank_sha256
from rrg_bench.baselines.s2d_align.train import TRAINING_INFO, train, trained_state_sha256
from rrg_bench.errors import UsageError
from rrg_bench.registry import registry

N_TRAIN, N_VAL, N_TEST = 24, 8, 5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(make_iu_root):
    from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen

    return IUXrayR2Gen(make_iu_root({"train": N_TRAIN, "val": N_VAL, "test": N_TEST}))


def run_stage(dataset, out: Path, stage: int, init: Path | None, seed: int = 0, **overrides: str) -> Path:
    sets = {"epochs": "8", "val_limit": str(N_VAL), **overrides}
    if init is not None:
        sets["init"] = str(init)
    return train(TrainRequest(dataset=dataset, output_dir=out, preset="tiny", stage=stage, limit=N_TRAIN,
                              progress=False, overrides=sets, seed=seed))


@pytest.fixture(scope="module")
def curriculum(dataset, tmp_path_factory):
    """{stage: (checkpoint, run dir)} of stages 1 -> 2 -> 3, each started from the previous."""
    root = tmp_path_factory.mktemp("curriculum")
    runs, init = {}, None
    for stage in (1, 2, 3):
        init = run_stage(dataset, root / f"stage{stage}", stage, init)
        runs[stage] = (init, root / f"stage{stage}")
    return runs


def losses(run: Path) -> list[float]:
    rows = map(json.loads, (run / "loss_log.jsonl").read_text().splitlines())
    return [r["loss"] for r in rows if r["event"] == "step"]


def info(checkpoint: Path) -> dict:
    return json.loads((checkpoint / TRAINING_INFO).read_text())


def bank(checkpoint: Path) -> torch.Tensor:
    return load_file(str(checkpoint / "model.safetensors"))[BANK_KEY]


def test_registered_as_an_image_generator_with_a_curriculum_trainer():
    from rrg_bench.baselines import TRAINERS

    assert registry("generators").get("s2d_align") is S2DAlignGenerator and S2DAlignGenerator.needs_images
    assert TRAINERS["s2d_align"].target == "rrg_bench.baselines.s2d_align.train:train"


def test_every_stage_loss_falls(curriculum):
    for stage, (_, run) in curriculum.items():
        values = losses(run)
        assert len(values) == 8 * N_TRAIN // 8
        assert np.mean(values[-3:]) < 0.85 * np.mean(values[:3]), (stage, values[:3], values[-3:])


def test_each_stage_starts_from_the_previous_checkpoint_with_its_memory_bank(curriculum):
    for stage in (2, 3):
        previous, current = curriculum[stage - 1][0], curriculum[stage][0]
        meta = info(current)
        assert meta["init"] == str(previous) and S2DAlignConfig.load(current).stage == stage
        loaded, _ = load_model(previous)
        assert meta["init_trained_sha256"] == trained_state_sha256(loaded)  # all trained weights carried
        assert meta["init_memory_bank_sha256"] == meta["start_memory_bank_sha256"] == bank_sha256(bank(previous))
    fresh = info(curriculum[1][0])["start_memory_bank_sha256"]
    assert fresh != bank_sha256(bank(curriculum[1][0]))  # stage 1 trained the bank it started with
    config = S2DAlignConfig.load(curriculum[3][0])
    assert config.keyphrase_target == "prefix" and config.references_k == 1
    assert config.keyphrase_source == info(curriculum[3][0])["keyphrase_source"] == "chexpert_rules"
    assert S2DAlignConfig.load(curriculum[2][0]).keyphrase_target == "none"


def test_a_frozen_memory_bank_is_the_same_tensor_in_all_three_checkpoints(dataset, tmp_path):
    """Later stages run with another seed: a re-drawn bank would differ, a carried one cannot."""
    init, banks = None, []
    for stage in (1, 2, 3):
        init = run_stage(dataset, tmp_path / f"s{stage}", stage, init, seed=stage, epochs="1", max_steps="1",
                         memory_trainable="false", val_limit="2")
        banks.append(bank(init))
    assert torch.equal(banks[0], banks[1]) and torch.equal(banks[1], banks[2])
    assert len({bank_sha256(b) for b in banks}) == 1


def test_head_target_trains_a_phrase_head_from_the_stage_2_checkpoint(dataset, curriculum, tmp_path):
    checkpoint = run_stage(dataset, tmp_path / "head", 3, curriculum[2][0], epochs="2", keyphrase_target="head",
                           stage3_references="false")
    config = S2DAlignConfig.load(checkpoint)
    assert config.keyphrase_target == "head" and config.references_k == 0 and config.phrase_vocab
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert weights["keyphrase_head.weight"].shape[0] == len(config.phrase_vocab)
    model, _ = load_model(checkpoint)
    assert model.keyphrase_head.out_features == len(config.phrase_vocab)
    assert info(checkpoint)["init_trained_sha256"] == trained_state_sha256(load_model(curriculum[2][0])[0])


def test_train_vision_and_lora_switches(dataset, tmp_path):
    quick = {"epochs": "1", "max_steps": "2", "val_limit": "2"}
    frozen = run_stage(dataset, tmp_path / "frozen", 1, None, **quick)
    tuned = run_stage(dataset, tmp_path / "tuned", 1, None, train_vision="true", **quick)
    plain = run_stage(dataset, tmp_path / "plain", 1, None, lora="false", **quick)
    vision = {k: load_file(str(d / "model.safetensors"))["vision_encoder.embeddings.cls_token"]
              for k, d in (("frozen", frozen), ("tuned", tuned), ("plain", plain))}
    assert torch.equal(vision["frozen"], vision["plain"]) and not torch.equal(vision["frozen"], vision["tuned"])
    assert (frozen / "lora").is_dir() and not (plain / "lora").is_dir() and not S2DAlignConfig.load(plain).lora


def test_stages_refuse_a_checkpoint_of_the_wrong_stage(dataset, curriculum, tmp_path):
    with pytest.raises(UsageError, match="stage-1 checkpoint"):
        run_stage(dataset, tmp_path / "wrong", 3, curriculum[1][0])


def test_generator_retrieves_train_references_only_and_cuts_the_key_phrases(dataset, curriculum):
    gen = S2DAlignGenerator(checkpoint=str(curriculum[3][0]), max_new_tokens=12, num_beams=1)
    train_all = dataset.studies("train")
    gen.setup(GeneratorContext(dataset="iu_xray/r2gen", split="test", train_studies=lambda: train_all,
                               progress=False))
    tests = dataset.studies("test")[:N_TEST]
    out = gen.generate(tests, [0] * N_TEST)
    train_ids = {s.study_id for s in train_all[:N_TRAIN]}
    for g, study in zip(out, tests):
        assert g.study_id == study.study_id and len(g.meta["references"]) == 1
        assert set(g.meta["references"]) <= train_ids and "Key phrases" not in g.text
    fp = gen.fingerprint()
    assert fp["retrieval"]["index"]["n"] == N_TRAIN and fp["stage"] == 3


def test_bench_run_writes_a_full_record(dataset, curriculum, tmp_path):
    from rrg_bench.cli import app

    checkpoint = curriculum[3][0]
    args = ["run", "--model", "s2d_align", "--checkpoint", str(checkpoint), "--dataset", "iu_xray/r2gen", "--split",
            "test", "--data-root", str(dataset.data_root), "--limit", str(N_TEST), "--batch-size", "4", "--metrics",
            "nlg", "--n-boot", "0", "--no-progress", "--model-arg", "max_new_tokens=12", "--runs-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert record["predictions"]["n"] == N_TEST and "bleu4[tok=ptb]" in record["metrics"]
    assert record["generator"]["checkpoint_sha256"] == S2DAlignGenerator(checkpoint=str(checkpoint)).fingerprint()[
        "checkpoint_sha256"]
    assert record["generator"]["retrieval"]["index"]["source"] == "checkpoint's training index"
    assert next(tmp_path.rglob("predictions.jsonl")).read_bytes().count(b"\n") == N_TEST
