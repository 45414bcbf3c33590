"""Simple baselines (random_report, constant_normal, oracle), the registry tables and the shared image loader."""

from __future__ import annotations

import collections
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rrg_bench.api.generator import GeneratorContext, study_seed
from rrg_bench.api.types import Study
from rrg_bench.baselines.common.images import file_sha256, load_image, load_study_image, select_image, to_float_array
from rrg_bench.baselines.constant_normal.generate import CONSTANT_NORMAL_RULE, ConstantNormal
from rrg_bench.baselines.oracle.generate import Oracle
from rrg_bench.baselines.random_report.generate import RandomReport, draw_excluding
from rrg_bench.errors import DataError, UsageError
from rrg_bench.metrics.common.labels import BLANK, CHEXPERT_LABELS, NO_FINDING, POSITIVE
from rrg_bench.registry import registry

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("BENCH_SHARED", REPO / ".." / "shared")).resolve()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def study(sid: str, text: str, split: str = "train", **kw) -> Study:
    return Study(study_id=sid, split=split, reference=text, reference_sha256=sha(text), **kw)


def context(train, split: str = "test", **kw) -> GeneratorContext:
    return GeneratorContext(dataset="unit", split=split, train_studies=lambda: list(train), progress=False, **kw)


def run(gen, studies, run_seed: int = 0):
    return gen.generate(studies, [study_seed(run_seed, s.study_id) for s in studies])


TRAIN = [study(f"tr{i:02d}", f"train report number {i}.") for i in range(20)]
TEST = [study(f"te{i:02d}", f"test reference {i}.", split="test") for i in range(30)]


# ---------------------------------------------------------------- random_report


def test_random_report_draws_train_reports_from_the_per_study_seed():
    gen = RandomReport()
    gen.setup(context(TRAIN))
    out = run(gen, TEST, run_seed=7)
    by_id = {s.study_id: s.reference for s in TRAIN}
    assert [g.study_id for g in out] == [s.study_id for s in TEST]
    assert all(g.text == by_id[g.meta["retrieved_from"]] for g in out)
    assert len({g.text for g in out}) > 5  # not one constant report

    # batch order and batch boundaries (a resumed run) do not change any study's report
    again = RandomReport()
    again.setup(context(TRAIN))
    resumed = run(again, TEST[:11], 7) + run(again, TEST[11:], 7)
    reversed_ = {g.study_id: g.text for g in run(again, TEST[::-1], 7)}
    assert [g.text for g in resumed] == [g.text for g in out]
    assert reversed_ == {g.study_id: g.text for g in out}

    # the seed alone decides the draw; another run seed gives other draws
    assert gen.generate([TEST[0]], [123])[0].text == gen.generate([TEST[1]], [123])[0].text
    assert [g.text for g in run(gen, TEST, run_seed=8)] != [g.text for g in out]


def test_draw_is_uniform_and_skips_the_excluded_index():
    counts = collections.Counter(draw_excluding(seed, 5, None) for seed in range(20_000))
    assert sorted(counts) == [0, 1, 2, 3, 4]
    assert all(3_600 < c < 4_400 for c in counts.values())
    excluded = collections.Counter(draw_excluding(seed, 5, 2) for seed in range(20_000))
    assert sorted(excluded) == [0, 1, 3, 4]
    assert all(4_500 < c < 5_500 for c in excluded.values())


def test_random_report_never_returns_the_evaluated_studys_own_report():
    gen = RandomReport()
    gen.setup(context(TRAIN, split="train"))
    out = run(gen, TRAIN)
    assert all(g.meta["retrieved_from"] != g.study_id for g in out)

    lone = RandomReport()
    lone.setup(context(TRAIN[:1], split="train"))
    with pytest.raises(DataError, match="tr00"):
        run(lone, TRAIN[:1])


def test_random_report_fingerprint_tracks_the_train_split():
    a, b, c = RandomReport(), RandomReport(), RandomReport()
    a.setup(context(TRAIN))
    b.setup(context(TRAIN))
    c.setup(context(TRAIN[:-1] + [study("tr19", "edited text.")]))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint()["train"]["n"] == 20
    assert a.fingerprint()["train"]["sha256"] != c.fingerprint()["train"]["sha256"]
    assert a.fingerprint()["name"] == "random_report" and a.fingerprint()["params"] == {}


@pytest.mark.parametrize("cls", [RandomReport, ConstantNormal])
def test_train_split_generators_fail_clearly_without_train_studies(cls):
    with pytest.raises(DataError, match="train split of dataset 'unit'"):
        cls().setup(context([]))


def test_generate_before_setup_is_a_programming_error():
    with pytest.raises(RuntimeError, match="setup"):
        run(RandomReport(), TEST[:1])
    with pytest.raises(RuntimeError, match="setup"):
        run(ConstantNormal(), TEST[:1])


def test_unknown_parameter_is_a_usage_error():
    with pytest.raises(UsageError, match="random_report"):
        RandomReport(k=3)


# ---------------------------------------------------------------- oracle


def test_oracle_copies_the_reference_and_is_never_eligible():
    out = run(Oracle(), TEST)
    assert [g.text for g in out] == [s.reference for s in TEST]
    assert Oracle.eligible is False
    assert RandomReport.eligible and ConstantNormal.eligible


def test_registry_resolves_the_builtin_names():
    from rrg_bench.baselines.knn_image.generate import KnnImage

    gens = registry("generators")
    assert gens.get("random_report") is RandomReport
    assert gens.get("constant_normal") is ConstantNormal
    assert gens.get("oracle") is Oracle
    assert gens.get("knn_image") is KnnImage


def test_baseline_modules_do_not_import_torch():
    names = ("constant_normal", "random_report", "oracle", "knn_image", "anat_attn", "am_mrg", "s2d_align")
    generators = ", ".join(f"rrg_bench.baselines.{name}.generate" for name in names)
    code = f"import sys, {generators}; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_every_generator_is_a_folder_with_its_card_beside_its_code():
    from rrg_bench.baselines import GENERATORS, TRAINERS

    for name, entry in GENERATORS.items():
        assert entry.target.startswith(f"rrg_bench.baselines.{name}.generate:"), entry.target
        assert entry.card == f"rrg_bench.baselines.{name}:CARD.md"
        folder = REPO / "baselines" / name
        assert (folder / "CARD.md").is_file() and (folder / "generate.py").is_file()
    assert not (REPO / "baselines" / "cards").exists()
    assert set(TRAINERS) == {"anat_attn", "am_mrg", "s2d_align"}


def test_published_models_have_one_shape_and_no_model_imports_anothers_internals():
    shape = {"configuration.py", "presets.py", "model.py", "loading.py", "generate.py", "train.py", "tiny.py",
             "CARD.md"}
    models = ("anat_attn", "am_mrg", "s2d_align")
    for name in models:
        folder = REPO / "baselines" / name
        assert shape <= {p.name for p in folder.iterdir()}, name
        for path in folder.glob("*.py"):
            text = path.read_text(encoding="utf-8")
            others = [m for m in models if m != name and f"rrg_bench.baselines.{m}." in text]
            assert others == [], f"{path.relative_to(REPO)} imports {others}"


# ---------------------------------------------------------------- constant_normal


class FakeLabeler:
    """Test double for metrics.chexpert_rules: texts containing 'NORMAL' are No Finding."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        labels = np.full((len(texts), len(CHEXPERT_LABELS)), BLANK, dtype=np.int64)
        for row, text in enumerate(texts):
            if "NORMAL" in text:
                labels[row, NO_FINDING] = POSITIVE
            else:
                labels[row, CHEXPERT_LABELS.index("Cardiomegaly")] = POSITIVE
        return labels


@pytest.fixture
def fake_labeler(monkeypatch):
    labeler = FakeLabeler()
    module = types.ModuleType("rrg_bench.metrics.chexpert_rules.labeler")
    module.label_reports = labeler
    monkeypatch.setitem(sys.modules, "rrg_bench.metrics.chexpert_rules.labeler", module)
    return labeler


def corpus(counts: dict[str, int]) -> list[Study]:
    texts = [t for t, n in counts.items() for _ in range(n)]
    return [study(f"s{i:03d}", t) for i, t in enumerate(texts)]


def test_constant_normal_picks_most_frequent_normal_report(fake_labeler):
    train = corpus({"big heart.": 6, "NORMAL b.": 3, "NORMAL a.": 3, "NORMAL c.": 1, "effusion.": 2})
    gen = ConstantNormal()
    gen.setup(context(train))
    out = run(gen, TEST)
    # the overall most frequent text is abnormal; the tie at 3 goes to the smaller text
    assert {g.text for g in out} == {"NORMAL a."}
    assert [g.study_id for g in out] == [s.study_id for s in TEST]
    assert fake_labeler.calls == [sorted({s.reference for s in train})]  # each distinct text once

    fp = gen.fingerprint()
    assert fp["selection"] == CONSTANT_NORMAL_RULE
    assert fp["report_sha256"] == sha("NORMAL a.")
    assert fp["report_count"] == 3 and fp["n_train"] == len(train)

    shuffled = ConstantNormal()
    shuffled.setup(context(train[::-1]))
    assert shuffled.fingerprint() == fp


def test_constant_normal_without_any_normal_report_is_a_data_error(fake_labeler):
    with pytest.raises(DataError, match="No Finding"):
        ConstantNormal().setup(context(corpus({"big heart.": 2, "effusion.": 1})))


def iu_train() -> list[Study]:
    annotation = shared_dir() / "data" / "iu_xray" / "annotation.json"
    if not annotation.is_file():
        pytest.skip(f"IU X-Ray annotation not found at {annotation} (set BENCH_SHARED)")
    return [study(e["id"], e["report"]) for e in json.loads(annotation.read_text())["train"]]


def test_constant_normal_on_iu_xray_train_picks_a_normal_report():
    rules = pytest.importorskip("rrg_bench.metrics.chexpert_rules.labeler")
    train = iu_train()
    gen = ConstantNormal()
    gen.setup(context(train))
    text = run(gen, TEST[:1])[0].text

    assert rules.label_reports([text])[0][NO_FINDING] == POSITIVE
    counts = collections.Counter(s.reference for s in train)
    assert gen.fingerprint()["report_count"] == counts[text] >= 10
    # independent check: Open-i's human-coded "Problems" field calls these studies normal
    reports_csv = shared_dir() / "data" / "iu_xray" / "indiana_reports.csv"
    with reports_csv.open(newline="") as handle:
        problems = {int(r["uid"]): r["Problems"] for r in csv.DictReader(handle)}
    coded = [problems[int(re.match(r"CXR(\d+)", s.study_id).group(1))] for s in train if s.reference == text]
    assert coded.count("normal") / len(coded) >= 0.8, collections.Counter(coded)


# ---------------------------------------------------------------- image_io


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_load_image_grayscale_and_rgb(tmp_path):
    gray = save_png(tmp_path / "g.png", np.arange(12 * 10, dtype=np.uint8).reshape(12, 10))
    assert load_image(gray).mode == "L" and load_image(gray).size == (10, 12)
    rgb = load_image(gray, mode="RGB")
    assert rgb.mode == "RGB"
    assert np.array_equal(np.asarray(rgb)[..., 1], np.asarray(load_image(gray)))
    array = to_float_array(load_image(gray), 4)
    assert array.shape == (4, 4) and array.dtype == np.float32 and 0 <= array.min() <= array.max() <= 1


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100], [257 * 200, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    assert np.asarray(load_image(path)).tolist() == [[0, 100], [200, 255]]


def test_missing_and_broken_images_name_the_study_and_path(tmp_path):
    missing = tmp_path / "images" / "s1" / "0.png"
    with pytest.raises(DataError, match=r"study s1: image .*s1[/\\]0\.png not found.*--data-root"):
        load_image(missing, study_id="s1")
    with pytest.raises(DataError, match="study s1"):
        file_sha256(missing, study_id="s1")

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image")
    with pytest.raises(DataError, match=r"study s2: image .*garbage\.png cannot be read"):
        load_image(garbage, study_id="s2")

    whole = save_png(tmp_path / "whole.png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated.png cannot be read"):
        load_image(truncated, study_id="s3")


def test_select_image_uses_the_manifest_frontal_view(tmp_path):
    lateral = save_png(tmp_path / "0.png", np.zeros((4, 4), np.uint8))
    frontal = save_png(tmp_path / "1.png", np.full((4, 4), 200, np.uint8))
    s = study("s1", "x", image_paths=(lateral, frontal), frontal_image=frontal)
    assert select_image(s, "frontal") == frontal
    assert select_image(s, "first") == lateral
    assert np.asarray(load_study_image(s)).max() == 200

    no_frontal = study("s2", "x", image_paths=(lateral,))
    with pytest.raises(DataError, match="study s2: the manifest names no frontal image.*image=first"):
        select_image(no_frontal, "frontal")
    with pytest.raises(DataError, match="study s3: the manifest lists no image"):
        select_image(study("s3", "x"), "first")


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path):
    path = save_png(tmp_path / "a.png", np.eye(8, dtype=np.uint8) * 255)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- trainers never use the test split


@pytest.mark.parametrize("option", ["--train-split", "--val-split"])
@pytest.mark.parametrize("model, stage", [("anat_attn", None), ("am_mrg", 1), ("am_mrg", 2), ("s2d_align", 1)])
def test_every_trainer_refuses_the_test_split_for_training_and_validation(model, stage, option, tmp_path):
    """Validation picks ``best/`` and stops training early, so a test split there leaks as surely as
    one trained on: both options end in a usage error (exit 2, one ``error:`` line naming the option)
    before anything is built or written."""
    from typer.testing import CliRunner

    from rrg_bench.cli import app

    out = tmp_path / "run"
    args = ["train", "--model", model, "--dataset", "demo", "--output", str(out), "--preset", "tiny",
            "--no-progress", option, "test"]
    result = CliRunner().invoke(app, args + (["--stage", str(stage)] if stage else []))
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{option} test" in errors[0], result.stderr
    assert not out.exists()


def test_training_splits_refuse_test_before_reading_any_study():
    from rrg_bench.api.training import TrainRequest
    from rrg_bench.baselines.common.splits import training_splits

    class Untouchable:
        name, splits = "unit", ("train", "val", "test")

        def studies(self, split):
            raise AssertionError(f"read {split}")

    for train_split, val_split, option in (("test", "val", "--train-split"), ("train", "test", "--val-split")):
        request = TrainRequest(dataset=Untouchable(), output_dir=Path("unused"), train_split=train_split,
                               val_split=val_split)
        with pytest.raises(UsageError, match=f"{option} test"):
            training_splits(request, model="unit", images="frontal", val_limit=None)


# ---------------------------------------------------------------- the Hub, through rrg_bench.weights


def test_hub_checkpoints_go_through_rrg_bench_weights(monkeypatch, tmp_path):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    from rrg_bench.baselines.common.checkpoints import resolve_checkpoint
    from rrg_bench.errors import WeightsUnavailable

    calls = []

    def fake_snapshot(repo_id, revision=None, local_files_only=False, **kw):
        calls.append((repo_id, revision, local_files_only))
        if repo_id == "org/missing":
            raise OSError("offline")
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert resolve_checkpoint("org/model", "abc123", model="am_mrg") == tmp_path
    with pytest.raises(WeightsUnavailable, match=r"am_mrg checkpoint 'org/missing' \(revision abc123\).*"
                                                 r"OSError: offline.*checkpoint=<local directory>"):
        resolve_checkpoint("org/missing", "abc123", model="am_mrg")
    assert calls == [("org/model", "abc123", False), ("org/missing", "abc123", False)]
    with pytest.raises(UsageError, match="revision"):
        resolve_checkpoint("org/model", None)
