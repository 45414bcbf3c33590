"""mimic_cxr/r2gen: R2Gen's per-image MIMIC-CXR entries and R2Gen's cleaning, prepared from a tiny fake
PhysioNet tree whose reports were invented for this test (no MIMIC text anywhere).

The expected references below were worked out by hand from R2Gen's ``clean_report_mimic_cxr``
(github.com/cuhksz-nlp/R2Gen modules/tokenizers.py), step by step in the comments, not computed by the
code under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import rrg_bench.datasets.mimic_cxr.r2gen as r2gen
from helpers.mimic_fake import FakeStudy, report, write_tree
from rrg_bench.datasets.mimic_cxr.r2gen import PREPARED_SUBDIR, MimicCxrR2Gen, prepare_mimic_cxr_r2gen
from rrg_bench.errors import DataError
from rrg_bench.manifests import sha256_text
from rrg_bench.registry import registry

FINDINGS_A = "The lungs are clear.  No pleural effusion or\n pneumothorax.  Heart size is normal."
# \n -> space, double spaces -> one, lower, split on ". ", punctuation out, joined by " . " and " ." at the end
CLEAN_A = "the lungs are clear . no pleural effusion or pneumothorax . heart size is normal ."

FINDINGS_B = ("1. Interval placement of ___ tube.  2. No pneumothorax.\n 3. Stable heart size..  "
              "Tip at T4-T5: unchanged; right/left equal; O'Neil's line < 2 cm.")
# "___" -> "_" (two "__" passes); spaces collapse; ".." -> "."; "1. " -> "", ". 2. " and ". 3. " -> ". ";
# per sentence " / ' go, then [.,?;*!%^&_+():-\[\]{}] where ":-\[" is a range: ":" ";" "<" go, "-" stays
CLEAN_B = ("interval placement of  tube . no pneumothorax . stable heart size . "
           "tip at t4-t5 unchanged rightleft equal oneils line  2 cm .")

FINDINGS_C = "Unchanged since 2011. Stable mediastinum?"
# R2Gen replaces every "1. " — also the end of "2011. " — so the year and the next word merge; "?" goes
CLEAN_C = "unchanged since 201stable mediastinum ."


def fake_studies() -> list[FakeStudy]:
    std = lambda findings: report(("INDICATION", "___ with cough."), ("FINDINGS", findings),  # noqa: E731
                                  ("IMPRESSION", "No acute process."))
    return [
        FakeStudy("10000001", "50000001", "test", std(FINDINGS_A), [("d0002", "LATERAL"), ("d0001", "PA")]),
        FakeStudy("10000001", "50000003", "test", report(("IMPRESSION", "Mild edema.")), [("d0004", "PA")]),
        FakeStudy("10000002", "50000005", "validate", std(FINDINGS_B), [("a0007", "AP")]),
        FakeStudy("10000002", "50000006", "validate", None, [("d0010", "PA")]),
        FakeStudy("11000003", "50000007", "train", std(FINDINGS_C),
                  [("d0011", "PA"), ("d0012", "LATERAL"), ("d0013", "AP")], crlf=True),
        FakeStudy("11000003", "50913680", "train", std("Custom rule report with findings."), [("d0014", "PA")]),
    ]


@pytest.fixture
def physionet(tmp_path) -> Path:
    return write_tree(tmp_path / "physionet.org" / "files" / "mimic-cxr-jpg" / "2.0.0", fake_studies(), jpgs=True)


def test_registered_with_a_preparer():
    assert "mimic_cxr/r2gen" in registry("datasets").names() and "mimic_cxr/r2gen" in registry("preparers").names()


def test_entries_are_images_with_r2gens_cleaning_on_hand_written_cases(physionet, tmp_path):
    out = tmp_path / "data" / PREPARED_SUBDIR
    result = prepare_mimic_cxr_r2gen(tmp_path / "physionet.org", out, check_counts=False)
    assert result.official is False and result.entries == {"train": 3, "val": 1, "test": 2}
    assert result.excluded["test"]["no_findings"] == 1 and result.excluded["val"]["no_report"] == 1
    assert result.excluded["train"]["custom_rule_report"] == 1
    assert "test: 2 entries (one per image)" in result.summary()
    dataset = MimicCxrR2Gen(tmp_path / "data")
    test, val, train = dataset.studies("test"), dataset.studies("val"), dataset.studies("train")
    assert [s.study_id for s in test] == ["d0001", "d0002"]  # one entry per image, dicom_id order
    assert [s.reference for s in test] == [CLEAN_A, CLEAN_A]
    assert [s.reference for s in val] == [CLEAN_B]
    assert [s.reference for s in train] == [CLEAN_C] * 3  # CRLF report files read as text: the same cleaning
    for study in test + val + train:
        assert len(study.image_paths) == 1 and study.reference_sha256 == sha256_text(study.reference)
    lateral = test[1]
    assert lateral.image_paths[0].name == "d0002.jpg" and lateral.frontal_image is None
    assert lateral.meta["views"] == ("LATERAL",) and lateral.meta["mimic_study_id"] == "50000001"
    assert test[0].frontal_image == test[0].image_paths[0] and val[0].frontal_image.name == "a0007.jpg"
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["reference_source"] == "physionet" and manifest["count_check"].startswith("failed")
    assert manifest["splits"]["test"]["excluded_studies"]["no_findings"] == 1
    report_ = dataset.verify()
    assert not report_.ok and report_.mismatched[0].startswith("entries differ from R2Gen's published ones")
    assert dataset.identity("test")["reference_policy"] == "r2gen_clean_findings"


def test_entry_counts_are_checked_against_r2gens(physionet, tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"train: 3 entries \(R2Gen: 270,790\)"):
        prepare_mimic_cxr_r2gen(physionet, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    published = {"train": 3, "val": 1, "test": 2}
    monkeypatch.setattr(r2gen, "split_counts", lambda info: {"studies": published[info.name], "images": 0})
    result = prepare_mimic_cxr_r2gen(physionet, tmp_path / "data" / PREPARED_SUBDIR)
    assert result.official and MimicCxrR2Gen(tmp_path / "data").verify().ok


def test_r2gens_own_annotation_gives_the_entries_and_its_differences_are_listed(physionet, tmp_path):
    entry = lambda eid, study, report_, path: {"id": eid, "study_id": study, "subject_id": "10000001",  # noqa: E731
                                               "report": report_, "image_path": [path], "split": "test"}
    annotation = {
        "train": [], "val": [],
        "test": [entry("d0001", "50000001", "The heart is normal.\n No effusion.", "p10/p10000001/s50000001/d0001.jpg"),
                 entry("d0004", "50000003", "Mild edema: stable.", "p10/p10000001/s50000003/d0004.jpg")],
    }
    path = tmp_path / "annotation.json"
    path.write_text(json.dumps(annotation))
    with pytest.raises(DataError, match="entries differ"):
        prepare_mimic_cxr_r2gen(physionet, tmp_path / "strict", annotation_json=path)
    out = tmp_path / "data" / PREPARED_SUBDIR
    result = prepare_mimic_cxr_r2gen(physionet, out, annotation_json=path, check_counts=False)
    assert result.reference_source == "r2gen_annotation" and result.entries["test"] == 2
    assert "test/d0004: in annotation.json, not selected from PhysioNet" in result.problems
    assert "test/d0002: selected from PhysioNet, not in annotation.json" in result.problems
    test = MimicCxrR2Gen(tmp_path / "data").studies("test")
    # the annotation's own text, cleaned the same way (":" is inside R2Gen's ":-\[" range)
    assert [s.reference for s in test] == ["the heart is normal . no effusion .", "mild edema stable ."]
    assert test[1].image_paths[0] == physionet.resolve() / "files/p10/p10000001/s50000003/d0004.jpg"
    assert test[1].meta["views"] == ("PA",) and test[1].meta["reference_source"] == "r2gen_annotation"
    path.write_text(json.dumps({"train": [], "test": []}))
    with pytest.raises(DataError, match="'train', 'val' and 'test'"):
        prepare_mimic_cxr_r2gen(physionet, tmp_path / "bad", annotation_json=path, check_counts=False)


def test_prepare_refuses_a_git_working_tree(physionet, tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(DataError, match="git working tree"):
        prepare_mimic_cxr_r2gen(physionet, tmp_path / "repo" / "data", check_counts=False)
