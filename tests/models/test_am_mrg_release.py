"""The authors' four released files, imported strictly at tiny width.

No released file is available here, so each layout is built from the key templates in
tests/fixtures/am_mrg/released_layouts.json — written from the authors' code that saves and reads the
files (every group cites repo@commit:path:line) — instantiated at tiny width. The importer must place
every stage-2 tensor in our model and fill every tensor our model has; memories must be drawn exactly as
AM_MRG.py draws them; the generator must run the imported model from ``--checkpoint DIR``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import random
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.types import Study
from rrg_bench.baselines.am_mrg.generate import AMMRGGenerator
from rrg_bench.baselines.am_mrg.loading import load_model
from rrg_bench.baselines.am_mrg.memory import REPORT, VISUAL, load_memory, memory_provenance
from rrg_bench.baselines.am_mrg.release import (
    FILES,
    REPORT_LABELS,
    check_strict,
    convert_stage2,
    import_release,
    infer_arm,
    infer_qformer,
    is_release,
)
from rrg_bench.errors import DataError, UsageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LAYOUTS = json.loads((Path(__file__).parents[1] / "fixtures" / "am_mrg" / "released_layouts.json").read_text())
#: the fixture's symbols at tiny width (a 2-block ARM of width 32 on 56 px, a 2-layer 32-d Q-Former, Hopfield
#: layers with the paper's 6 heads of width 4, a 64-d LLM); paper size is in the fixture's "about"
TINY = dict(D=32, L=2, P=14, T=17, NC=8, N=4, R=2, K=4, M=85, W=48, Q=14, H=32, QL=2, QI=64, HH=6, HD=4, HP=4,
            V=32, E=64, SW=8)
MAPS_NUM, REPORT_TOTAL = 3, 20


def expected_keys(layout: dict) -> dict[str, tuple[int, ...]]:
    """Every key of a layout at tiny width: placeholders expanded over their ranges, shapes evaluated."""
    ranges = {name: list(eval(spec, {"range": range}, TINY)) for name, spec in layout.get("index_ranges", {}).items()}
    out = {}
    for group in layout["groups"]:
        assert re.search(r"\S+@[0-9a-f]{8}:\S+", group["cite"]), group["cite"]  # every group cites repo@commit:path
        for pattern, shape in group["keys"].items():
            names = re.findall(r"\{(\w)\}", pattern)
            for values in itertools.product(*(ranges[n] for n in names)):
                key = pattern.format(**dict(zip(names, values)))
                out[key] = tuple(int(eval(str(d), {}, TINY)) for d in shape)
    return out


def _stage2_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    keys = expected_keys(LAYOUTS["Stage2CheXpertPlus.pth"])
    return {k: torch.randn(shape, generator=g) * 0.05 for k, shape in keys.items()}


class _ForeignConfig(dict):
    """Pickled as a class of a module the loader does not have (SwinCheX's yacs CfgNode)."""


def _save_with_foreign_config(obj: dict, path: Path) -> None:
    module = types.ModuleType("yacs_like.config")
    _ForeignConfig.__module__ = "yacs_like.config"
    module._ForeignConfig = _ForeignConfig
    sys.modules.update({"yacs_like": types.ModuleType("yacs_like"), "yacs_like.config": module})
    try:
        torch.save(obj, path)
    finally:
        del sys.modules["yacs_like.config"], sys.modules["yacs_like"]
        _ForeignConfig.__module__ = __name__


def write_release(directory: Path) -> dict[str, object]:
    """The four files at tiny width; returns what the test compares against."""
    directory.mkdir(parents=True, exist_ok=True)
    stage2 = _stage2_state()
    hparams = argparse.Namespace(max_length=60, min_new_tokens=3, max_new_tokens=12, scaling=4.0, dataset="mimic_cxr")
    torch.save({"model": stage2, "config": hparams, "epoch": 9, "step": 1234}, directory / FILES["stage2"])
    g = torch.Generator().manual_seed(1)
    stage1 = {k: torch.randn(s, generator=g) for k, s in expected_keys(LAYOUTS["Stage1ckpt.pth"]).items()}
    swinchex = {"model": stage1, "optimizer": {"state": {}}, "lr_scheduler": {}, "max_accuracy": 0.8, "epoch": 25,
                "config": _ForeignConfig(MODEL={"TYPE": "swin"})}
    _save_with_foreign_config(swinchex, directory / FILES["stage1"])
    rng = np.random.default_rng(2)
    cam = {label: rng.standard_normal((n, TINY["V"])).astype(np.float32)
           for label, n in (("Cardiomegaly", 5), ("Edema", 2), ("No Finding", 4))}  # first-encountered order
    # enough reports that the authors' 6,000 can be drawn (an empty label is float64, as their script writes it)
    reports = {label: rng.standard_normal((400 * n, TINY["V"])).astype(np.float32) if n else np.empty((0, TINY["V"]))
               for label, n in zip(REPORT_LABELS, (0, 9, 4, 1, 3, 2, 2, 5, 1, 6, 0, 1, 4, 12))}
    (directory / FILES["cam"]).write_bytes(pickle.dumps(cam))
    (directory / FILES["report_memory"]).write_bytes(pickle.dumps(reports))
    return {"stage2": stage2, "stage1_tokens": stage1["disease_tokens"], "cam": cam, "reports": reports}


@pytest.fixture(scope="module")
def tiny_llm_dir(tmp_path_factory) -> Path:
    from rrg_bench.baselines.am_mrg.tiny import build_tiny_llm, train_tokenizer

    tokenizer = train_tokenizer(["the heart is normal .", "no pleural effusion .", "lungs are clear ."], 300)
    out = tmp_path_factory.mktemp("llm")
    build_tiny_llm(tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    directory = tmp_path_factory.mktemp("release")
    return directory, write_release(directory)


def test_the_fixture_is_the_papers_layout_at_paper_size():
    paper = dict(D=1024, L=24, P=16, T=197, NC=1000, N=16, R=64, K=4, M=2730, W=1408, Q=14, H=768, QL=12, QI=3072,
                 HH=6, HD=1024, HP=768, V=768, E=4096, SW=192)
    saved = dict(TINY)
    TINY.update(paper)
    try:
        keys = expected_keys(LAYOUTS["Stage2CheXpertPlus.pth"])
    finally:
        TINY.clear()
        TINY.update(saved)
    assert keys["HopfieldLayers.hopfield.association_core.in_proj_bias"] == (16896,)  # 6144 + 6144 + 4608
    assert keys["Qformer.bert.encoder.layer.10.crossattention.self.key.weight"] == (768, 1408)
    assert "Qformer.bert.encoder.layer.11.crossattention.self.key.weight" not in keys  # every 2nd layer from 0
    assert keys["visual_encoder.layers.23.mixer.x_proj_c_b.weight"] == (96, 1024)


def test_every_stage2_tensor_lands_in_the_model_and_the_model_gets_every_tensor():
    state = convert_stage2(_stage2_state())
    config_fields = dict(vision_config=infer_arm(state), qformer_config=infer_qformer(state, heads=2))
    assert config_fields["vision_config"]["num_hidden_layers"] == 2
    assert config_fields["qformer_config"]["cross_attention_frequency"] == 2
    from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig

    config = AMMRGConfig(**config_fields, num_queries=14, visual_memory_dim=32, report_memory_dim=32,
                         hopfield={"num_heads": 6, "hidden_size": 4, "pattern_size": 4})
    check_strict(config, state, llm_width=64)  # exact: no missing, no unexpected, same shapes
    with pytest.raises(DataError, match="missing qformer.encoder.layer.1.output_query.LayerNorm.bias"):
        dropped = "qformer.encoder.layer.1.output_query.LayerNorm.bias"
        check_strict(config, {k: v for k, v in state.items() if k != dropped}, llm_width=64)
    with pytest.raises(DataError, match=r"llama_proj.weight: \(64, 32\) != \(48, 32\)"):
        check_strict(config, state, llm_width=48)
    with pytest.raises(DataError, match="no place in the model"):
        convert_stage2({**_stage2_state(), "Qformer.bert.encoder.layer.0.intermediate.dense.weight": torch.zeros(2, 2)})


def _authors_memories(files: dict, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """AM_MRG.py lines 64-91 as the authors wrote them, on the test's arrays (Python's random, seeded)."""
    random.seed(seed)
    cam = files["cam"]
    arrays = [a for values in cam.values()
              for a in (random.sample(list(values), MAPS_NUM) if len(values) > MAPS_NUM else values)]
    visual = torch.cat([files["stage1_tokens"], torch.from_numpy(np.stack(arrays)).unsqueeze(0)], dim=1)[0]
    reports = files["reports"]
    counts = {label: len(reports[label]) for label in REPORT_LABELS}
    weights = {label: c / sum(counts.values()) for label, c in counts.items()}
    per_label = {label: int(w * REPORT_TOTAL) for label, w in weights.items()}
    adjustment = REPORT_TOTAL - sum(per_label.values())
    if adjustment > 0:
        per_label[max(weights, key=weights.get)] += adjustment
    selected = []
    for label, n in per_label.items():
        selected.extend(random.sample(reports[label].tolist(), n))
    return visual, torch.tensor(selected)


def test_import_is_strict_and_draws_the_memories_as_the_authors(release, tiny_llm_dir, tmp_path):
    directory, files = release
    assert is_release(directory) and not is_release(tmp_path)
    out = import_release(directory, tmp_path / "imported", llm=str(tiny_llm_dir), maps_num=MAPS_NUM,
                         report_total=REPORT_TOTAL, qformer_heads=2)
    visual, report = load_memory(out / "memories", VISUAL), load_memory(out / "memories", REPORT)
    want_visual, want_report = _authors_memories(files, seed=42)
    assert torch.equal(visual, want_visual) and torch.equal(report, want_report) and report.shape[0] == REPORT_TOTAL
    provenance = memory_provenance(out / "memories", REPORT)
    assert provenance["split"] == "test" and provenance["dataset"] == "mimic_cxr"  # the authors' leak, on record
    model, _ = load_model(out)
    state, stage2 = model.state_dict(), files["stage2"]
    assert torch.equal(state["qformer.encoder.layer.0.crossattention.attention.key.weight"],
                       stage2["Qformer.bert.encoder.layer.0.crossattention.self.key.weight"])
    bias = stage2["R_HopfieldLayers.hopfield.association_core.in_proj_bias"]
    assert torch.equal(torch.cat([state[f"r_hopfield.{p}_proj.bias"] for p in "qkv"]), bias)
    assert torch.equal(state["query_tokens"], stage2["disease_tokens"])
    scan = "layers.1.mixer.A_c_b_log"
    assert torch.equal(state[f"vision_encoder.{scan}"], stage2[f"visual_encoder.{scan}"])
    assert torch.equal(state["llama_norm.weight"], stage2["layer_norm.weight"])
    c = model.config
    assert (c.max_report_tokens, c.min_new_tokens, c.max_new_tokens) == (60, 3, 12)  # the checkpoint's own hparams
    assert c.vision_config["model_type"] == "arm" and c.prefix_length() == 17 + 3 * 14


def _study(tmp_path: Path, split: str = "test") -> Study:
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(path)
    return Study("s1", split, "lungs are clear .", "x", image_paths=(path,), frontal_image=path)


def test_checkpoint_dir_with_the_release_runs_and_guards_the_test_memory(release, tiny_llm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    directory, _ = release
    params = dict(checkpoint=str(directory), llm=str(tiny_llm_dir), num_beams=1, min_new_tokens=1, max_new_tokens=4)
    generator = AMMRGGenerator(**params)
    with pytest.raises(UsageError, match="allow_test_memory=true"):
        generator.setup(GeneratorContext(dataset="mimic_cxr/r2gen", split="test"))
    chexpert = AMMRGGenerator(**params)
    chexpert.setup(GeneratorContext(dataset="chexpert_plus/rexrank", split="test"))  # not the memory's dataset
    [generation] = chexpert.generate([_study(tmp_path)], [0])
    assert generation.study_id == "s1" and generation.meta["n_tokens"] <= 4
    fingerprint = chexpert.fingerprint()
    assert fingerprint["encoder"]["model_type"] == "arm" and fingerprint["params"]["llm"] == str(tiny_llm_dir)
    allowed = AMMRGGenerator(**params, allow_test_memory=True)
    allowed.setup(GeneratorContext(dataset="mimic_cxr/r2gen", split="test"))
    assert allowed.fingerprint()["params"]["allow_test_memory"] is True
    # a checkpoint trained here keeps the params it had before the release params existed
    plain = AMMRGGenerator(checkpoint=str(chexpert._resolved()))
    assert not set(plain.fingerprint()["params"]) & {"llm", "llm_revision", "memory_seed", "allow_test_memory"}


def test_broken_release_files_are_named(release, tiny_llm_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))  # no installed copy to fall back on
    directory, files = release
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in FILES.values():
        (broken / name).write_bytes((directory / name).read_bytes())
    torch.save({"model": {"patch_embed.proj.weight": torch.zeros(1)}}, broken / FILES["stage1"])
    with pytest.raises(DataError, match="disease_tokens"):
        import_release(broken, tmp_path / "out", llm=str(tiny_llm_dir), maps_num=MAPS_NUM, report_total=REPORT_TOTAL)
    (broken / FILES["stage1"]).unlink()
    with pytest.raises(DataError, match="Stage1ckpt.pth not found"):
        import_release(broken, tmp_path / "out", llm=str(tiny_llm_dir))
