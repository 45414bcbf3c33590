"""The shipped demo dataset: byte-identical rebuild, loading, image content that follows the
findings, and pixel retrieval beating chance."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rrg_bench.datasets.demo.build import build_demo
from rrg_bench.datasets.demo.dataset import DemoDataset, shipped_dir
from rrg_bench.datasets.demo.drawing import draw_xray, png_bytes, write_synthetic_images
from rrg_bench.datasets.demo.findings import parse_findings
from rrg_bench.errors import DataError
from rrg_bench.manifests import sha256_text

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "data_manifests" / "demo"


def _data_files(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and p.name != "README.md" and "__pycache__" not in p.parts
    }


def test_rebuild_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    build_demo(tmp_path, seed=0)
    built, shipped = _data_files(tmp_path), _data_files(SHIPPED)
    assert sorted(built) == sorted(shipped)
    for name, path in built.items():
        if path.read_bytes() != shipped[name].read_bytes():
            if name.endswith(".png"):
                same_pixels = np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(shipped[name])))
                pytest.fail(f"{name} differs (pixels identical: {same_pixels}; a different zlib changes only bytes)")
            pytest.fail(f"{name} differs")


def test_shipped_folder_is_small_and_resolves_through_the_package():
    assert shipped_dir().resolve() == SHIPPED.resolve()
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total < 1_000_000


def test_demo_loads_without_a_data_root(monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    dataset = DemoDataset()
    sizes = {split: len(dataset.studies(split)) for split in dataset.splits}
    assert sizes == {"train": 36, "val": 12, "test": 12}
    study = dataset.studies("test")[0]
    assert study.study_id == "demo-test-001" and study.reference_sha256 == sha256_text(study.reference)
    assert all(p.is_file() for p in study.image_paths) and study.frontal_image == study.image_paths[0]
    assert Image.open(study.frontal_image).size == (128, 128) and Image.open(study.frontal_image).mode == "L"
    report = dataset.verify()
    assert report.ok and not report.missing and not report.mismatched
    identity = dataset.identity("test")
    assert identity["name"] == "demo" and identity["n_expected"] == 12


def test_a_data_root_copy_is_used_and_checked(tmp_path):
    copy = tmp_path / "demo"
    shutil.copytree(SHIPPED / "data", copy)
    dataset = DemoDataset(tmp_path)
    assert dataset.studies("val")[0].frontal_image.is_relative_to(copy)
    lines = (copy / "reports.jsonl").read_text(encoding="utf-8").splitlines()
    victim = json.loads(lines[40])
    lines[40] = json.dumps({"study_id": victim["study_id"], "findings": victim["findings"] + " Edited."})
    (copy / "reports.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (copy / "images" / "demo-test-002_lateral.png").unlink()
    dataset = DemoDataset(tmp_path)
    split = victim["study_id"].split("-")[1]
    with pytest.raises(DataError, match=rf"1 of \d+ studies differ .*{victim['study_id']}: reference sha256 differs"):
        dataset.studies(split)
    report = dataset.verify()
    assert not report.ok
    assert report.mismatched == [f"{split}/{victim['study_id']}: reference sha256 differs"]
    assert report.missing == ["test/images/demo-test-002_lateral.png: image missing"]


def test_an_unrelated_data_root_falls_back_to_the_shipped_copy(tmp_path):
    assert DemoDataset(tmp_path).root() == shipped_dir() / "data"


# ----------------------------------------------------------------------------- findings and images


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("The heart size is normal. The lungs are clear. No pleural effusion or pneumothorax.", ["normal"]),
        ("There is moderate cardiomegaly. Small left pleural effusion.", ["cardiomegaly", "effusion_left"]),
        ("The heart is enlarged. There is no pneumothorax.", ["cardiomegaly"]),
        ("No cardiomegaly. Mild bibasilar atelectasis.", ["atelectasis_left", "atelectasis_right"]),
        ("A right pneumothorax is present. No pleural effusion.", ["pneumothorax_right"]),
        ("Patchy airspace opacity at the left lung base.", ["consolidation_left"]),
        ("No focal airspace disease. Lungs are clear without consolidation.", ["normal"]),
        ("An endotracheal tube terminates 4 cm above the carina.", ["device_et_tube"]),
        ("Left chest wall pacemaker. Right PICC line in the SVC.", ["device_central_line", "device_pacemaker"]),
    ],
)
def test_parse_findings_reads_mentions_and_negations(text, labels):
    assert parse_findings(text).labels() == labels


def test_a_finding_without_a_side_takes_the_seeds_side():
    assert parse_findings("Pleural effusion.", seed=0).effusion == {"left"}
    assert parse_findings("Pleural effusion.", seed=1).effusion == {"right"}


def _region(img: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    n = img.shape[0]
    return img[int(y0 * n):int(y1 * n), int(x0 * n):int(x1 * n)].astype(float)


NORMAL = "The heart size is normal. The lungs are clear. No pleural effusion or pneumothorax."


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drawn_shapes_follow_the_findings(seed):
    normal = draw_xray(NORMAL, seed)
    big_heart = draw_xray("There is moderate cardiomegaly. No pleural effusion.", seed)
    heart_row = lambda img: (_region(img, 0.2, 0.9, 0.64, 0.68) > 160).sum()  # noqa: E731
    assert heart_row(big_heart) > heart_row(normal) + 20
    effusion = draw_xray("Small left pleural effusion. No pneumothorax.", seed)  # patient's left = image right
    assert _region(effusion, 0.72, 0.80, 0.63, 0.68).mean() > _region(normal, 0.72, 0.80, 0.63, 0.68).mean() + 50
    ptx = draw_xray("There is a small right apical pneumothorax.", seed)  # image left
    box = (0.15, 0.47, 0.15, 0.45)
    assert (_region(ptx, *box) < 15).sum() > (_region(normal, *box) < 15).sum() + 100
    consolidation = draw_xray("There is focal consolidation in the right lower lobe.", seed)
    assert _region(consolidation, 0.27, 0.35, 0.51, 0.59).mean() > _region(normal, 0.27, 0.35, 0.51, 0.59).mean() + 50
    tube = draw_xray("An endotracheal tube terminates 4 cm above the carina.", seed)
    assert _region(tube, 0.48, 0.52, 0.05, 0.3).max(axis=1).min() > 200 > _region(normal, 0.48, 0.52, 0.05, 0.3).max()
    lateral_effusion = draw_xray("Small left pleural effusion.", seed, view="lateral")
    lateral = draw_xray(NORMAL, seed, view="lateral")
    assert _region(lateral_effusion, 0.6, 0.75, 0.70, 0.76).mean() > _region(lateral, 0.6, 0.75, 0.70, 0.76).mean() + 50


def test_drawing_is_deterministic_and_noisy():
    a, b, c = draw_xray(NORMAL, 5), draw_xray(NORMAL, 5), draw_xray(NORMAL, 6)
    assert a.dtype == np.uint8 and a.shape == (128, 128)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert png_bytes(a) == png_bytes(b)
    with pytest.raises(ValueError):
        draw_xray(NORMAL, 0, view="oblique")


def test_write_synthetic_images_puts_a_frontal_and_laterals(tmp_path):
    write_synthetic_images(NORMAL, 3, tmp_path / "s" / "1.png", [tmp_path / "s" / "0.png"])
    frontal, lateral = (np.asarray(Image.open(tmp_path / "s" / f"{k}.png")) for k in (1, 0))
    assert np.array_equal(frontal, draw_xray(NORMAL, 3, "frontal")) and not np.array_equal(frontal, lateral)


def _embed(path: Path) -> np.ndarray:
    pixels = np.asarray(Image.open(path).convert("L").resize((64, 64), Image.BILINEAR), dtype=np.float64).ravel()
    pixels = pixels - pixels.mean()
    return pixels / (np.linalg.norm(pixels) + 1e-8)


def test_nearest_train_image_shares_findings_far_more_often_than_chance():
    dataset = DemoDataset()
    train = dataset.studies("train")
    index = np.stack([_embed(s.frontal_image) for s in train])
    hits = expected = 0.0
    for split in ("val", "test"):
        for study in dataset.studies(split):
            neighbour = train[int(np.argmax(index @ _embed(study.frontal_image)))]
            hits += neighbour.meta["labels"] == study.meta["labels"]
            expected += sum(t.meta["labels"] == study.meta["labels"] for t in train) / len(train)
    assert hits >= 2 * expected and hits >= 10, (hits, expected)
    # and a random pick of train reports matches no better than chance
    rng = random.Random(0)
    assert sum(rng.choice(train).meta["labels"] == s.meta["labels"] for s in dataset.studies("test")) < hits
