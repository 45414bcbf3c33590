"""iu_xray/r2gen on the shared IU X-Ray text: hashes, edited copies, the Open-i CSV path, the
frontal choice against ReXrank's key images, and the manifest rebuild."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rrg_bench.datasets.iu_xray.build import build_r2gen_manifest
from rrg_bench.datasets.iu_xray.openi import (
    FROM_INFERRED_ORDER,
    FROM_PROJECTION,
    NO_FRONTAL_IN_PAIR,
    choose_frontal,
    openi_png_name,
    uid_of,
)
from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen
from rrg_bench.errors import DataError
from rrg_bench.manifests import references_sha256, sha256_text

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "data_manifests" / "iu_xray" / "r2gen"


@pytest.fixture(scope="module")
def annotation(iu_source) -> dict:
    return json.loads((iu_source / "annotation.json").read_text(encoding="utf-8"))


def _copy_with(tmp_path: Path, annotation: dict) -> Path:
    root = tmp_path / "iu"
    root.mkdir()
    (root / "annotation.json").write_text(json.dumps(annotation), encoding="utf-8")
    return root


def test_all_splits_load_and_every_reference_verifies(iu_source, annotation):
    dataset = IUXrayR2Gen(iu_source)
    for split, n in (("train", 2069), ("val", 296), ("test", 590)):
        studies = dataset.studies(split)
        assert len(studies) == n
        assert [s.study_id for s in studies] == [e["id"] for e in annotation[split]]
        assert [s.reference for s in studies] == [e["report"] for e in annotation[split]]
    study = dataset.studies("test")[0]
    assert study.reference_sha256 == sha256_text(study.reference)
    assert study.image_paths == tuple(iu_source / "images" / p for p in annotation["test"][0]["image_path"])
    assert study.frontal_image in study.image_paths and study.frontal_image.is_absolute()
    assert study.meta["uid"] == uid_of(study.study_id)


def test_verify_on_the_shared_copy_passes_and_reports_missing_images(iu_source):
    report = IUXrayR2Gen(iu_source).verify()
    assert report.ok and not report.mismatched
    assert any("test: 590 references match" in line for line in report.present)
    assert any(line.startswith("images: 0 of 5910") for line in report.missing)


def test_identity_needs_no_data_root_and_matches_the_text(annotation, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    identity = IUXrayR2Gen().identity("test")
    assert identity["n_expected"] == 590 and identity["reference_policy"] == "findings"
    expected = references_sha256((e["id"], sha256_text(e["report"])) for e in annotation["test"])
    assert identity["references_sha256"] == expected
    assert identity["manifest_sha256"] and identity["study_ids_sha256"]


def test_one_edited_reference_is_named_by_studies_and_verify(tmp_path, annotation):
    edited = json.loads(json.dumps(annotation))
    victim = edited["test"][42]
    victim["report"] = victim["report"] + " "
    dataset = IUXrayR2Gen(_copy_with(tmp_path, edited))
    with pytest.raises(DataError) as info:
        dataset.studies("test")
    message = str(info.value)
    assert f"{victim['id']}: reference sha256 differs" in message and "1 of 590 studies differ" in message
    assert not any(e["id"] in message for e in edited["test"] if e["id"] != victim["id"])
    assert len(dataset.studies("train")) == 2069  # other splits are unaffected
    report = dataset.verify()
    assert not report.ok and report.mismatched == [f"test/{victim['id']}: reference sha256 differs"]


def test_many_differences_name_twenty_and_count_the_rest(tmp_path, annotation):
    edited = json.loads(json.dumps(annotation))
    for entry in edited["val"][:25]:
        entry["report"] = entry["report"].lower()
    moved = edited["test"].pop(0)
    edited["train"].append(moved)
    dataset = IUXrayR2Gen(_copy_with(tmp_path, edited))
    with pytest.raises(DataError, match=r"25 of 296 studies differ.*\(5 more\)"):
        dataset.studies("val")
    with pytest.raises(DataError, match=rf"{moved['id']}: in split 'train' of annotation.json, manifest says 'test'"):
        dataset.studies("test")
    with pytest.raises(DataError, match=rf"{moved['id']}: in annotation.json train but not in the manifest"):
        dataset.studies("train")


def test_openi_csv_path_gives_identical_studies(tmp_path, iu_source):
    root = tmp_path / "kaggle"
    root.mkdir()
    for name in ("indiana_reports.csv", "indiana_projections.csv"):
        shutil.copy(iu_source / name, root / name)
    from_csv, from_annotation = IUXrayR2Gen(root), IUXrayR2Gen(iu_source)
    for split in ("train", "val", "test"):
        assert from_csv.studies(split) == [
            s.__class__(**{**s.__dict__, "image_paths": tuple(root / p.relative_to(iu_source) for p in s.image_paths),
                           "frontal_image": root / s.frontal_image.relative_to(iu_source)})
            for s in from_annotation.studies(split)
        ]
    assert from_csv.verify().ok


def test_openi_csv_with_an_edited_finding_is_named(tmp_path, iu_source):
    import csv

    root = tmp_path / "kaggle"
    root.mkdir()
    victim = IUXrayR2Gen(iu_source).studies("test")[3]
    with open(iu_source / "indiana_reports.csv", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        if int(row["uid"]) == victim.meta["uid"]:
            row["findings"] += " Extra."
    with open(root / "indiana_reports.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fields)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match=rf"1 of 590 .*{victim.study_id}: reference sha256 differs"):
        IUXrayR2Gen(root).studies("test")


def test_missing_data_root_says_where_the_data_comes_from(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    for dataset in (IUXrayR2Gen(), IUXrayR2Gen(tmp_path / "nowhere"), IUXrayR2Gen(tmp_path)):
        with pytest.raises(DataError) as info:
            dataset.studies("test")
        message = str(info.value)
        assert "--data-root" in message and "BENCH_DATA_ROOT" in message and "annotation.json" in message
        assert not dataset.verify().ok


def test_data_root_from_env_and_iu_xray_subfolder(tmp_path, iu_source, monkeypatch):
    (tmp_path / "iu_xray").mkdir()
    shutil.copy(iu_source / "annotation.json", tmp_path / "iu_xray" / "annotation.json")
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp_path))
    studies = IUXrayR2Gen().studies("val")
    assert studies[0].image_paths[0].is_relative_to(tmp_path / "iu_xray" / "images")


def test_malformed_annotation_is_a_data_error(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "annotation.json").write_text('{"train": [')
    with pytest.raises(DataError, match=r"annotation.json:1: not valid JSON"):
        IUXrayR2Gen(root).studies("test")
    (root / "annotation.json").write_text('{"train": "    "}')
    with pytest.raises(DataError, match="is not a list of studies"):
        IUXrayR2Gen(root).studies("test")


# ----------------------------------------------------------------------------- frontal choice


@pytest.mark.parametrize("split, rexrank", [("test", "ReXRank_IUXray_test.json"), ("val", "ReXRank_IUXray_valid.json")])
def test_frontal_equals_rexrank_key_image_for_every_study(iu_source, split, rexrank):
    keys = json.loads((iu_source / rexrank).read_text(encoding="utf-8"))
    studies = IUXrayR2Gen(iu_source).studies(split)
    assert len(keys) == len(studies)
    for study in studies:
        key = keys[study.study_id]["key_image_path"]
        assert study.frontal_image == iu_source / "images" / key, study.study_id
    # the point of the mapping: 0.png is not always the frontal view
    assert sum(s.frontal_image.name == "1.png" for s in studies) == {"test": 60, "val": 33}[split]


def test_openi_names_and_the_frontal_rules():
    assert openi_png_name("2384_IM-0942-1001.dcm.png") == "CXR2384_IM-0942-1001.png"
    assert openi_png_name("1_IM-0001-4001.dcm.png") == "CXR1_1_IM-0001-4001.png"
    assert openi_png_name("2851_IM-1260-0001-0001.dcm.png") == "CXR2851_IM-1260-0001.png"
    assert openi_png_name("1309_IM-0201-1001-0001.dcm.png") == "CXR1309_IM-0201-1001-0001.png"
    # sorted Open-i names: 3001 (lateral) before 4004 (frontal) -> 1.png is frontal
    choice = choose_frontal([("1347_IM-0225-4004.dcm.png", "Frontal"), ("1347_IM-0225-3001.dcm.png", "Lateral")])
    assert (choice.index, choice.source, choice.views) == (1, FROM_PROJECTION, ("Lateral", "Frontal"))
    # "-0001.png" sorts after "-0001-0002.png": the inferred Open-i name decides the order
    choice = choose_frontal([("2851_IM-1260-0001-0001.dcm.png", "Frontal"),
                             ("2851_IM-1260-0001-0002.dcm.png", "Lateral")])
    assert (choice.index, choice.source) == (1, FROM_INFERRED_ORDER)
    # two laterals among 0.png/1.png: ReXrank's convention, 1.png, flagged
    choice = choose_frontal([("932_IM-2430-2001.dcm.png", "Lateral"), ("932_IM-2430-3001.dcm.png", "Lateral"),
                             ("932_IM-2430-4004.dcm.png", "Frontal")])
    assert (choice.index, choice.source, choice.views) == (1, NO_FRONTAL_IN_PAIR, ("Lateral", "Lateral"))
    with pytest.raises(DataError):
        choose_frontal([("5_IM-1-1001.dcm.png", "Frontal")])
    assert uid_of("CXR1_1_IM-0001") == 1 and uid_of("CXR2384_IM-0942") == 2384
    with pytest.raises(DataError):
        uid_of("IM-0001")


def test_every_study_records_how_its_frontal_was_decided(iu_source):
    studies = [s for split in ("train", "val", "test") for s in IUXrayR2Gen(iu_source).studies(split)]
    sources = {s.meta["frontal_source"] for s in studies}
    assert sources == {FROM_PROJECTION, FROM_INFERRED_ORDER, NO_FRONTAL_IN_PAIR}
    for study in studies:
        views = study.meta["views"]
        index = study.image_paths.index(study.frontal_image)
        if study.meta["frontal_source"] == NO_FRONTAL_IN_PAIR:
            assert views == ("Lateral", "Lateral") and index == 1
        else:
            assert views[index] == "Frontal" and (index == 0 or views[0] != "Frontal")


# ----------------------------------------------------------------------------- rebuild, images


def test_rebuilding_the_manifest_reproduces_the_committed_files(tmp_path, iu_source):
    build_r2gen_manifest(iu_source, tmp_path)
    for name in ("manifest.yaml", "train.jsonl", "val.jsonl", "test.jsonl"):
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name


def test_manifest_holds_no_report_text(iu_source, annotation):
    committed = b"".join(p.read_bytes() for p in COMMITTED.glob("*.jsonl")) + (COMMITTED / "manifest.yaml").read_bytes()
    for entry in annotation["test"][:50]:
        longest = max(entry["report"].split(". "), key=len)
        assert longest.encode() not in committed


def test_synthetic_images_at_r2gen_paths(tmp_path, iu_source):
    from PIL import Image

    from helpers.iu_images import write_iu_images

    root = tmp_path / "iu"
    root.mkdir()
    shutil.copy(iu_source / "annotation.json", root / "annotation.json")
    drawn = write_iu_images(root, "test", limit=4)
    studies = {s.study_id: s for s in IUXrayR2Gen(root).studies("test")}
    for sid in drawn:
        study = studies[sid]
        assert all(p.is_file() for p in study.image_paths)
        assert Image.open(study.frontal_image).size == (128, 128)
    report = IUXrayR2Gen(root).verify()
    assert report.ok and any(line.startswith("images: 8 of 5910") for line in report.missing)
