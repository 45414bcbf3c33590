"""The switches that make ``paper`` the authors' recipe: the bias at generation (every step, prefill only,
none), the bias in teacher-forced passes, EOS as a target, the checkpoint handed back, the test split
refused before any weight is needed, and missing backbones named with the fetch command."""

from __future__ import annotations

import pytest
import torch

from rrg_bench.baselines.anat_attn.presets import resolve_recipe
from rrg_bench.baselines.anat_attn.tiny import build_tiny_model, train_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo():
    from rrg_bench.datasets.demo.dataset import DemoDataset

    return DemoDataset()


@pytest.fixture(scope="module")
def tokenizer(demo):
    return train_tokenizer([s.reference for s in demo.studies("train")], vocab_size=300)


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_tiny_model(tokenizer, text_positions=24, seed=3).eval()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    grid = torch.zeros(2, 8, 8)
    grid[:, 2:6, 1:4] = 1.0  # a structured prior: the blur and the bias are far from constant
    return torch.randn(2, 3, 128, 128, generator=g), grid


def generate(model, inputs, **config):
    saved = {k: getattr(model.config, k) for k in config}
    for k, v in config.items():
        setattr(model.config, k, v)
    try:
        out = model.generate_reports(pixel_values=inputs[0], grid_masks=inputs[1], max_new_tokens=8,
                                     repetition_penalty=1.0, output_scores=True, return_dict_in_generate=True)
    finally:
        for k, v in saved.items():
            setattr(model.config, k, v)
    return out.sequences, torch.stack(out.scores, 1)


def teacher_forced_greedy(model, inputs, steps: int, **config) -> torch.Tensor:
    """Greedy decoding by full recomputation (no cache, teacher-forced passes) under ``config``."""
    saved = {k: getattr(model.config, k) for k in config}
    for k, v in config.items():
        setattr(model.config, k, v)
    try:
        ids = torch.zeros(inputs[0].shape[0], 0, dtype=torch.long)
        with torch.no_grad():
            for _ in range(steps):
                logits = model(pixel_values=inputs[0], input_ids=ids if ids.shape[1] else None,
                               grid_masks=inputs[1]).logits[:, -1]
                ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    finally:
        for k, v in saved.items():
            setattr(model.config, k, v)
    return ids


def test_decode_bias_none_generates_as_if_there_were_no_anatomy(model, inputs):
    """The authors' SDPA ablations: no mask was built inside generate(), so no bias at all."""
    none, scores_none = generate(model, inputs, decode_bias="none")
    plain, scores_plain = generate(model, inputs, attention_mode="none")
    assert torch.equal(none, plain)
    torch.testing.assert_close(scores_none, scores_plain)


def test_decode_bias_prefill_only_biases_the_prefill_and_no_decoding_step(model, inputs):
    """The authors' eager runtime: a decoding step's mask is cut to one cell. Equivalent: image rows biased,
    text rows not, i.e. teacher-forced ``bias_rows=image``."""
    prefill, scores_prefill = generate(model, inputs, decode_bias="prefill_only", bias_rows="all")
    every, scores_every = generate(model, inputs, decode_bias="every_step", bias_rows="all")
    torch.testing.assert_close(scores_prefill[:, 0], scores_every[:, 0])  # the same prefill
    assert not torch.allclose(scores_prefill[:, 1:], scores_every[:, 1:])  # decoding steps differ
    assert torch.equal(prefill, teacher_forced_greedy(model, inputs, prefill.shape[1], bias_rows="image"))
    assert torch.equal(every, teacher_forced_greedy(model, inputs, every.shape[1], bias_rows="all"))


def test_train_bias_switch_only_touches_teacher_forced_passes(model, inputs, tokenizer):
    ids = torch.tensor([tokenizer("The lungs are clear.")["input_ids"]] * 2)

    def logits(**config):
        saved = {k: getattr(model.config, k) for k in config}
        for k, v in config.items():
            setattr(model.config, k, v)
        try:
            return model(pixel_values=inputs[0], input_ids=ids, grid_masks=inputs[1]).logits
        finally:
            for k, v in saved.items():
                setattr(model.config, k, v)

    with torch.no_grad():
        torch.testing.assert_close(logits(train_bias=False), logits(attention_mode="none"))
        assert not torch.allclose(logits(train_bias=True), logits(attention_mode="none"))
    assert not torch.equal(generate(model, inputs, train_bias=False)[1],
                           generate(model, inputs, attention_mode="none")[1])


def test_eos_is_a_target_only_when_train_eos(tokenizer, demo):
    from rrg_bench.baselines.anat_attn.train import Collator, tokenize_reports

    studies = demo.studies("train")[:3]
    eos = tokenizer.eos_token_id
    ours = tokenize_reports(tokenizer, studies, 200)
    theirs = tokenize_reports(tokenizer, studies, 200, eos=False)
    assert all(e.token_ids[-1] == eos for e in ours) and all(eos not in e.token_ids for e in theirs)
    assert [e.token_ids[:-1] for e in ours] == [e.token_ids for e in theirs]
    labels = Collator(tokenizer.pad_token_id)([{"input_ids": e.token_ids, "image_path": "x"} for e in theirs])["labels"]
    assert eos not in labels.tolist()[0] and (labels != -100).sum() == sum(len(e.token_ids) for e in theirs)


def test_paper_preset_is_the_authors_recipe_and_improved_is_ours():
    _, paper = resolve_recipe(None, {})
    assert (paper.optimizer, paper.lr, paper.weight_decay, paper.schedule, paper.batch_size, paper.epochs,
            paper.max_batches_per_epoch, paper.grad_clip, paper.shuffle) == (
        "adamw", 3e-4, 0.01, "constant", 4, 20, 101, None, True)
    assert (paper.attention_mode, paper.bias_rows, paper.mask_source, paper.attention_strength) == (
        "soft", "legacy_top_left", "lung_heart", 1.0)
    assert (paper.train_eos, paper.evaluate_checkpoint, paper.decode_bias, paper.train_bias) == (
        False, "final", "none", True)
    _, improved = resolve_recipe("improved", {})
    assert (improved.train_eos, improved.evaluate_checkpoint, improved.decode_bias, improved.bias_rows) == (
        True, "best", "every_step", "all")
    assert resolve_recipe("paper_nomask", {})[1].attention_mode == "none"
    assert resolve_recipe("paper_fixed", {})[1].bias_rows == "all"
    cloud = resolve_recipe("cloud", {})[1]
    assert (cloud.attention_mode, cloud.train_bias, cloud.decode_bias) == ("hidden", False, "none")


def test_final_is_handed_back_even_when_validation_picked_a_best(demo, tmp_path):
    from rrg_bench.api.training import TrainRequest
    from rrg_bench.baselines.anat_attn.train import train

    out = tmp_path / "run"
    request = TrainRequest(dataset=demo, output_dir=out, preset="tiny", limit=8, progress=False,
                           overrides={"evaluate_checkpoint": "final", "train_eos": "false", "epochs": "1",
                                      "val_limit": "4", "tiny_text_positions": "48"})
    assert train(request) == out / "final"
    assert (out / "best" / "model.safetensors").is_file() and (out / "final" / "model.safetensors").is_file()


@pytest.mark.parametrize("option", ["--train-split", "--val-split"])
def test_paper_training_refuses_the_test_split_before_needing_any_weights(option, tmp_path):
    from typer.testing import CliRunner

    from rrg_bench.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--model", "anat_attn", "--dataset", "demo", "--output", str(out),
                                      "--no-progress", option, "test"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{option} test" in errors[0] and not out.exists()


def test_bench_train_without_backbones_names_what_to_fetch(tmp_path):
    """Issue 12: no Hub, nothing fetched: one `error:` line naming the weights and the fetch command."""
    from helpers.bench_cli import bench_env, run_bench

    env = bench_env(BENCH_WEIGHTS_DIR=str(tmp_path / "weights"), BENCH_CACHE_DIR=str(tmp_path / "cache"),
                    HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    proc = run_bench(["train", "--model", "anat_attn", "--dataset", "demo", "--output", str(tmp_path / "out"),
                      "--no-progress"], env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in proc.stderr, proc.stderr
    assert "bench weights fetch dinov3-vits16" in lines[0] and "facebook/dinov3-vits16-pretrain-lvd1689m" in lines[0]
