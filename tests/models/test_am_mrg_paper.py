"""The ``paper`` switches of am_mrg, pinned: what each paper preset sets, the authors' per-epoch cosine,
selection by validation BLEU-4 (and mid-epoch validation), R2Gen-cleaned training text, and the BLIP-2
Q-Former initialisation from LAVIS's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers.am_mrg_blip2 import lavis_qformer_state
from rrg_bench.baselines.am_mrg.presets import resolve_recipe
from rrg_bench.baselines.am_mrg.qformer import from_lavis, load_qformer_init
from rrg_bench.baselines.am_mrg.validation import corpus_bleu4, report_cleaner
from rrg_bench.baselines.common.trainloop import (
    ModelIO,
    epoch_cosine_factor,
    make_scheduler,
    run_training,
    state_record,
)
from rrg_bench.errors import UsageError
from rrg_bench.metrics.nlg.r2gen import clean_report_iu_xray, clean_report_mimic_cxr

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_paper_presets_are_the_authors_switches():
    _, mimic = resolve_recipe(2, None, {}, "mimic_cxr/r2gen")
    _, iu = resolve_recipe(2, None, {}, "iu_xray/r2gen")
    llms = ("meta-llama/Llama-2-7b-chat-hf", "Qwen/Qwen1.5-0.5B-Chat")
    for recipe, epochs, evals, llm in ((mimic, 10, 2, llms[0]), (iu, 30, 1, llms[1])):
        assert (recipe.encoder, recipe.vision_model, recipe.qformer_init) == \
            ("arm", "mambaxray-clip-l", "blip2-qformer-flant5xxl")
        assert (recipe.lr, recipe.weight_decay, recipe.batch_size, recipe.epochs, recipe.grad_clip) == \
            (1e-4, 0.01, 2, epochs, None)
        assert (recipe.schedule, recipe.min_lr, recipe.warmup_ratio) == ("cosine_epoch", 1e-6, 0.0)
        assert (recipe.select_by, recipe.evals_per_epoch, recipe.report_text) == ("val_bleu4", evals, "r2gen_clean")
        assert (recipe.llm, recipe.llm_dtype, recipe.images, recipe.freeze_vision, recipe.lora) == \
            (llm, "float16", "all", False, False)
    assert (mimic.paper_dataset, iu.paper_dataset) == ("mimic_cxr/r2gen", "iu_xray/r2gen")
    _, vit = resolve_recipe(2, "vit_mimic", {}, "mimic_cxr/official")  # the named substitute, as trained before
    assert (vit.encoder, vit.vision_model, vit.qformer_init) == \
        ("transformers", "google/vit-large-patch16-224-in21k", "")
    assert (vit.schedule, vit.select_by, vit.report_text, vit.epochs) == ("cosine", "val_loss", "raw", 10)
    _, stage1 = resolve_recipe(1, None, {}, "mimic_cxr/r2gen")
    assert (stage1.grad_clip, stage1.checkpoint, stage1.epochs, stage1.label_smoothing) == (5.0, "final", 25, 0.1)
    with pytest.raises(UsageError, match="--dataset iu_xray/r2gen"):
        resolve_recipe(2, "paper_iu", {}, "iu_xray/rexrank")


def test_cosine_epoch_is_cosine_annealing_stepped_once_per_epoch():
    _, recipe = resolve_recipe(2, "paper_iu", {"epochs": "5"}, "iu_xray/r2gen")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=recipe.lr)
    scheduler = make_scheduler(recipe, optimizer, total_steps=5 * 3, steps_per_epoch=3)
    ours = []
    for _ in range(15):
        ours.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    reference_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(reference_opt, T_max=5, eta_min=1e-6)
    per_epoch = []
    for _ in range(5):  # Lightning's default interval: one scheduler step per epoch
        per_epoch.append(reference_opt.param_groups[0]["lr"])
        reference_opt.step()
        reference.step()
    assert ours == pytest.approx([lr for lr in per_epoch for _ in range(3)], rel=1e-9)
    assert epoch_cosine_factor(5, 5, 0.01) == pytest.approx(0.01)  # reaches eta_min / lr at T_max


class _Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Linear(2, 1)

    def forward(self, x, y):
        return torch.nn.functional.mse_loss(self.w(x), y)


def _loop(tmp_path: Path, scores: list[float] | None, **overrides: str):
    from accelerate import Accelerator

    _, recipe = resolve_recipe(2, "tiny_paper", {"epochs": "2", "batch_size": "2", **overrides}, "iu_xray/r2gen")
    data = [{"x": torch.randn(2), "y": torch.randn(1)} for _ in range(8)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    calls = iter(scores or [])
    io = ModelIO(compute_loss=lambda m, u, b: m(b["x"], b["y"]), info_name="info.json",
                 write_model=lambda u, d: (d.mkdir(parents=True), (d / "w.txt").write_text("x")),
                 training_info=lambda kind, state: {"step": state.step, "best_score": state.best_score},
                 eval_weight=lambda b: torch.tensor(float(len(b["x"]))),
                 score=(lambda unwrapped, val: next(calls)) if scores is not None else None)
    torch.manual_seed(0)
    model = _Toy()
    state = run_training(accelerator=Accelerator(cpu=True), model=model,
                         optimizer=torch.optim.AdamW(model.parameters(), lr=recipe.lr), train_loader=loader,
                         val_loader=torch.utils.data.DataLoader(data[:4], batch_size=2), settings=recipe,
                         out=tmp_path, seed=0, resume_from=None, progress=False, io=io)
    return state, [json.loads(line) for line in (tmp_path / "loss_log.jsonl").read_text().splitlines()]


def test_selection_follows_the_validation_score_evaluated_every_half_epoch(tmp_path):
    # 4 steps per epoch, 2 epochs, evaluation every half epoch: steps 2, 4, 6, 8
    state, log = _loop(tmp_path, scores=[0.10, 0.30, 0.20, 0.25])
    evals = [r for r in log if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4, 6, 8]
    assert [r["val_score"] for r in evals] == [0.10, 0.30, 0.20, 0.25]
    assert (state.best_score, state.best_score_step, state.best_step) == (0.30, 4, 4)
    assert json.loads((tmp_path / "best" / "info.json").read_text()) == {"step": 4, "best_score": 0.30}
    assert state_record(state)["best_score"] == 0.30
    # the log's lr is the rate after the step's scheduler update, i.e. the next step's: constant within an epoch
    lrs = [r["lr"] for r in log if r["event"] == "step"]
    lr, floor = 5e-3, 1e-4 / 5e-3  # tiny_paper: lr 5e-3, min_lr 1e-4
    assert lrs == pytest.approx([lr * epoch_cosine_factor(e, 2, floor) for e in (0, 0, 0, 1, 1, 1, 1, 2)])


def test_loss_selection_files_are_unchanged(tmp_path):
    state, log = _loop(tmp_path, scores=None, select_by="val_loss", evals_per_epoch="1")
    assert [r["step"] for r in log if r["event"] == "eval"] == [4, 8]
    assert all("val_score" not in r for r in log)
    record = state_record(state)
    assert "best_score" not in record and "best_score_step" not in record  # other models' trainer_state.json as before


def test_training_text_is_r2gens_cleaning_of_the_dataset_family():
    report = "The heart is normal.  1. No effusion:\nclear lungs. X-ray shows <2 cm> nodule."
    assert report_cleaner("iu_xray/r2gen", "r2gen_clean")(report) == clean_report_iu_xray(report)
    assert report_cleaner("mimic_cxr/r2gen", "r2gen_clean")(report) == clean_report_mimic_cxr(report)
    assert report_cleaner("chexpert_plus/rexrank", "r2gen_clean")(report) == clean_report_mimic_cxr(report)
    assert report_cleaner("mimic_cxr/r2gen", "raw")(report) == report


def test_validation_bleu4_is_pycocoevalcaps():
    from pycocoevalcap.bleu.bleu import Bleu

    hyps = ["the heart is normal in size .", "no pleural effusion .", "lungs are clear"]
    refs = ["the heart is normal .", "there is no pleural effusion or pneumothorax .", "the lungs are clear ."]
    expected, _ = Bleu(4).compute_score({i: [r] for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)},
                                        verbose=0)
    assert corpus_bleu4(hyps, refs) == pytest.approx(expected[3])


def test_blip2_qformer_loads_from_lavis_names_dropping_what_am_mrg_drops(tmp_path):
    from transformers import Blip2QFormerModel

    from rrg_bench.baselines.am_mrg.tiny import tiny_qformer_config
    from rrg_bench.baselines.common.vision import build_hf_config

    qformer = Blip2QFormerModel(build_hf_config(tiny_qformer_config(32)))
    checkpoint = lavis_qformer_state(qformer)
    torch.save({"model": checkpoint, "config": {"arch": "pretrain_flant5xxl"}}, tmp_path / "blip2.pth")
    mapped, dropped = from_lavis(checkpoint)
    assert sorted(dropped) == ["Qformer.bert.embeddings.word_embeddings.weight",
                               "Qformer.bert.encoder.layer.0.intermediate.dense.weight"]
    provenance = load_qformer_init(qformer, str(tmp_path / "blip2.pth"))
    assert provenance["layout"] == "lavis" and provenance["dropped"] == 2 and provenance["tensors"] == len(mapped)
    assert all(torch.equal(qformer.state_dict()[k], v) for k, v in mapped.items())
    too_wide = Blip2QFormerModel(build_hf_config(tiny_qformer_config(48)))
    with pytest.raises(UsageError, match="does not fit"):
        load_qformer_init(too_wide, str(tmp_path / "blip2.pth"))
