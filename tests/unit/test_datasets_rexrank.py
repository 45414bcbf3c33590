"""ReXrank datasets: iu_xray/rexrank (+ /findings) on the real public ReXrank IU files;
mimic_cxr/rexrank (+ /findings) and chexpert_plus/rexrank on fakes whose reports were invented
for this test (no MIMIC or CheXpert Plus text anywhere)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from helpers.mimic_fake import FakeStudy, report, write_tree
from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.datasets.chexpert_plus.rexrank import CheXpertPlusRexrank, prepare_chexpert_plus_rexrank, study_id_of
from rrg_bench.datasets.iu_xray.build import build_rexrank_manifest
from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen
from rrg_bench.datasets.iu_xray.rexrank import IUXrayRexrank, IUXrayRexrankFindings
from rrg_bench.datasets.mimic_cxr.rexrank import MimicCxrRexrank, MimicCxrRexrankFindings, prepare_mimic_cxr_rexrank
from rrg_bench.errors import DataError
from rrg_bench.manifests import sha256_text
from rrg_bench.registry import registry

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- policy


def test_ground_truth_is_reXranks_split_json_string():
    assert policy.ground_truth("Clear.", "Normal.") == "Findings: Clear. Impression: Normal."
    assert policy.ground_truth(math.nan, "\nNORMAL.\n") == "Findings: None Impression: \nNORMAL.\n"
    assert policy.ground_truth("Clear.", None) == "Findings: Clear. Impression: None"
    assert policy.ground_truth("", "x") == "Findings:  Impression: x"  # an empty string is not missing (pd.notna)
    assert policy.reference_text(policy.FINDINGS, None, "x") is None
    with pytest.raises(ValueError):
        policy.reference_text("impression", "a", "b")


def test_registered():
    names = set(registry("datasets").names())
    assert {"iu_xray/rexrank", "iu_xray/rexrank/findings", "mimic_cxr/rexrank", "mimic_cxr/rexrank/findings",
            "chexpert_plus/rexrank"} <= names


# ----------------------------------------------------------------------------- IU X-Ray


def test_iu_manifest_builder_reproduces_the_committed_files(iu_source, tmp_path):
    build_rexrank_manifest(iu_source, tmp_path / "m")
    committed = REPO / "data_manifests" / "iu_xray" / "rexrank"
    for name in ("manifest.yaml", "test.jsonl", "val.jsonl"):
        assert (tmp_path / "m" / name).read_bytes() == (committed / name).read_bytes(), name


def test_iu_references_by_policy(iu_source):
    source = json.loads((iu_source / "ReXRank_IUXray_test.json").read_text())
    studies = IUXrayRexrank(iu_source.parent).studies("test")  # <root>/iu_xray is found
    assert len(studies) == 590 and [s.study_id for s in studies] == list(source)
    for study in studies:
        entry = source[study.study_id]
        assert study.reference == entry["report"]  # for IU X-Ray the file's report field equals split_json's string
        assert study.reference == f"Findings: {entry['section_findings']} Impression: {entry['section_impression']}"
    assert studies[0].frontal_image == iu_source / "images" / source[studies[0].study_id]["key_image_path"]
    findings = IUXrayRexrankFindings(iu_source).studies("val")
    r2gen = IUXrayR2Gen(iu_source).studies("val")
    assert [(s.study_id, s.reference) for s in findings] == [(s.study_id, s.reference) for s in r2gen]


def test_iu_identity_separates_the_two_policies(iu_source):
    main, findings = IUXrayRexrank(None).identity("test"), IUXrayRexrankFindings(None).identity("test")
    assert (main["name"], main["reference_policy"]) == ("iu_xray/rexrank", "findings_impression")
    assert (findings["name"], findings["reference_policy"]) == ("iu_xray/rexrank/findings", "findings")
    assert main["study_ids_sha256"] == findings["study_ids_sha256"]
    assert main["references_sha256"] != findings["references_sha256"]
    assert main["n_expected"] == 590 and IUXrayRexrank(None).identity("val")["n_expected"] == 296
    assert findings["study_ids_sha256"] == IUXrayR2Gen(None).identity("test")["study_ids_sha256"]


def test_iu_edited_text_and_missing_files_are_named(iu_source, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    data = json.loads((iu_source / "ReXRank_IUXray_test.json").read_text())
    first = next(iter(data))
    data[first]["section_impression"] += " Edited."
    (root / "ReXRank_IUXray_test.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"iu_xray/rexrank test: 1 of 590 studies differ .*{first}: reference sha256"):
        IUXrayRexrank(root).studies("test")
    assert len(IUXrayRexrankFindings(root).studies("test")) == 590  # findings untouched
    with pytest.raises(DataError, match=r"ReXRank_IUXray_valid.json is missing"):
        IUXrayRexrank(root).studies("val")
    report_ = IUXrayRexrank(root).verify()
    assert not report_.ok and any(first in m for m in report_.mismatched)
    with pytest.raises(DataError, match="no data root given"):
        IUXrayRexrank(None).studies("test")
    with pytest.raises(DataError, match="neither ReXRank_IUXray_test.json"):
        IUXrayRexrank(tmp_path / "empty").studies("test")
    shutil.copy(iu_source / "ReXRank_IUXray_test.json", root)
    shutil.copy(iu_source / "ReXRank_IUXray_valid.json", root)
    assert IUXrayRexrank(root).verify().ok


# ----------------------------------------------------------------------------- MIMIC-CXR (fake)


def _std(findings: str, impression: str | None = "No acute process.") -> str:
    sections = [("EXAMINATION", "CHEST (PA AND LAT)"), ("FINDINGS", findings)]
    return report(*sections, *([("IMPRESSION", impression)] if impression else []))


def fake_mimic() -> list[FakeStudy]:
    return [
        FakeStudy("10000001", "50000001", "test", _std("The lungs are clear.  No effusion or\n pneumothorax."),
                  [("d0002", "LATERAL"), ("d0001", "PA")]),
        FakeStudy("10000001", "50000002", "test", _std("Small left effusion.", None), [("d0003", "AP")]),
        FakeStudy("10000001", "50000003", "test", report(("IMPRESSION", "Mild edema.")), [("d0004", "PA")]),
        FakeStudy("10000001", "50000004", "test", None, [("d0005", "PA")]),
        FakeStudy("10000002", "50913680", "test", _std("Hand-sectioned upstream."), [("d0006", "PA")]),
        FakeStudy("10000002", "50000006", "test", _std("Lines in place."),
                  [("a0007", "PA"), ("b0008", "AP"), ("c0009", "LL")]),
        FakeStudy("10000002", "50000007", "test", _std("Lateral only study."), [("d0010", "LATERAL")]),
        FakeStudy("11000003", "50000008", "train", _std("Train study."), [("d0011", "PA")]),
    ]


@pytest.fixture
def physionet(tmp_path) -> Path:
    return write_tree(tmp_path / "physionet.org" / "files" / "mimic-cxr-jpg" / "2.0.0", fake_mimic(), jpgs=True)


def test_mimic_counts_are_checked_against_reXranks(physionet, tmp_path):
    with pytest.raises(DataError,
                       match=r"differs from ReXrank's: 4 studies \(ReXrank: 2,347\); 7 images \(ReXrank: 3,858\)"):
        prepare_mimic_cxr_rexrank(physionet, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mimic_prepare_from_physionet(physionet, tmp_path):
    seen = []
    out = tmp_path / "data" / "mimic_cxr" / "rexrank"
    result = prepare_mimic_cxr_rexrank(tmp_path / "physionet.org", out, check_counts=False,
                                       progress=lambda d, n: (lambda k=1: seen.append(k)))
    assert not result.official and result.reference_source == "physionet" and sum(seen) == 7
    assert (result.studies_in_split, result.included, result.included_images) == (7, 4, 7)
    assert result.excluded == {"no_report": 1, "custom_rule_report": 1, "no_findings": 1}
    assert "test: 4 of 7 studies (7 images)" in result.summary()
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["reference_source"] == "physionet" and manifest["official"] is False

    studies = {s.study_id: s for s in MimicCxrRexrank(tmp_path / "data").studies("test")}
    assert list(studies) == ["50000001", "50000002", "50000006", "50000007"]
    assert studies["50000001"].reference == \
        "Findings: The lungs are clear. No effusion or pneumothorax. Impression: No acute process."
    assert studies["50000002"].reference == "Findings: Small left effusion. Impression: None"
    assert studies["50000006"].frontal_image.name == "b0008.jpg"  # the last AP/PA in dicom_id order
    assert studies["50000001"].frontal_image.name == "d0001.jpg"
    assert studies["50000007"].frontal_image is None  # no AP/PA image: kept, no frontal
    assert studies["50000001"].image_paths[0] == physionet.resolve() / "files/p10/p10000001/s50000001/d0001.jpg"
    findings = {s.study_id: s.reference for s in MimicCxrRexrankFindings(tmp_path / "data").studies("test")}
    assert findings["50000002"] == "Small left effusion."
    ident, ident_f = MimicCxrRexrank(tmp_path / "data").identity("test"), \
        MimicCxrRexrankFindings(tmp_path / "data").identity("test")
    assert ident["n_expected"] == 4 and ident["official"] is False and ident["reference_source"] == "physionet"
    assert ident["references_sha256"] != ident_f["references_sha256"]
    assert MimicCxrRexrank(None).identity("test")["n_expected"] is None  # policies without prepared data
    assert not MimicCxrRexrank(tmp_path / "data").verify().ok  # non-official counts are reported


def test_mimic_reference_text_from_reXranks_json(physionet, tmp_path):
    rexrank = {
        "50000001": {"section_findings": "The lungs are clear.\nNo effusion or pneumothorax.",
                     "section_impression": "No acute process."},
        "50000002": {"section_findings": "Small left effusion.", "section_impression": math.nan},
        "50000006": {"section_findings": "Lines in place.", "section_impression": "Stable."},
        "50000007": {"section_findings": "Lateral only study.", "section_impression": None},
    }
    json_path = tmp_path / "ReXRank_MIMICCXR_test.json"
    json_path.write_text(json.dumps(rexrank))  # NaN is written as JSON NaN, as in ReXrank's file
    out = tmp_path / "data" / "mimic_cxr" / "rexrank"
    result = prepare_mimic_cxr_rexrank(physionet, out, rexrank_json=json_path, check_counts=False)
    assert result.reference_source == "rexrank_json" and result.json_differences == []
    studies = {s.study_id: s.reference for s in MimicCxrRexrank(tmp_path / "data").studies("test")}
    assert studies["50000001"] == \
        "Findings: The lungs are clear.\nNo effusion or pneumothorax. Impression: No acute process."
    assert studies["50000002"] == "Findings: Small left effusion. Impression: None"
    rexrank["59999999"] = {"section_findings": "Not in PhysioNet.", "section_impression": None}
    json_path.write_text(json.dumps(rexrank))
    result = prepare_mimic_cxr_rexrank(physionet, tmp_path / "other", rexrank_json=json_path, check_counts=False)
    assert result.json_differences == ["59999999: in ReXRank_MIMICCXR_test.json, not selected from PhysioNet"]


def test_mimic_refuses_a_git_working_tree_and_names_missing_inputs(physionet, tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(DataError, match="inside the git working tree"):
        prepare_mimic_cxr_rexrank(physionet, tmp_path / "repo" / "data", check_counts=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="mimic-cxr-2.0.0-split.csv.gz, mimic-cxr-2.0.0-metadata.csv.gz not found"):
        prepare_mimic_cxr_rexrank(tmp_path / "empty", tmp_path / "out", check_counts=False)
    with pytest.raises(DataError, match="not prepared"):
        MimicCxrRexrank(tmp_path).studies("test")
    with pytest.raises(DataError, match="only the split 'test'"):
        MimicCxrRexrank(tmp_path).studies("train")


# ----------------------------------------------------------------------------- CheXpert Plus (fake)


def _chexpert_csv(path: Path, rows: list[dict]) -> Path:
    import pandas as pd

    columns = ["path_to_image", "path_to_dcm", "frontal_lateral", "ap_pa", "deid_patient_id", "split",
               "section_findings", "section_impression"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def fake_chexpert_rows() -> list[dict]:
    imp = "\n1. NO ACUTE PROCESS.\n"
    return [
        {"path_to_image": "train/patient00001/study1/view1_frontal.jpg", "frontal_lateral": "Frontal",
         "split": "train", "section_findings": "Train text.", "section_impression": "Train."},
        {"path_to_image": "valid/patient64541/study1/view1_frontal.jpg", "frontal_lateral": "Frontal",
         "split": "valid", "section_findings": None, "section_impression": imp},
        {"path_to_image": "valid/patient64542/study1/view2_lateral.jpg", "frontal_lateral": "Lateral",
         "split": "valid", "section_findings": "\nHeart is normal.\n", "section_impression": "Normal."},
        {"path_to_image": "valid/patient64542/study1/view1_frontal.jpg", "frontal_lateral": "Frontal",
         "split": "valid", "section_findings": "\nHeart is normal.\n", "section_impression": "Normal."},
    ]


def test_chexpert_plus_prepare_and_load(tmp_path):
    source = tmp_path / "chexpertplus"
    source.mkdir()
    _chexpert_csv(source / "df_chexpert_plus_240401.csv", fake_chexpert_rows())
    with pytest.raises(DataError, match=r"2 studies \(ReXrank: 200\); 3 images \(ReXrank: 234\)"):
        prepare_chexpert_plus_rexrank(source, tmp_path / "data" / "chexpert_plus" / "rexrank")
    result = prepare_chexpert_plus_rexrank(source, tmp_path / "data" / "chexpert_plus" / "rexrank", check_counts=False)
    assert (result.official, result.studies, result.images) == (False, 2, 3)
    dataset = CheXpertPlusRexrank(tmp_path / "data")
    studies = {s.study_id: s for s in dataset.studies("test")}
    assert list(studies) == ["patient64541_study1", "patient64542_study1"]
    assert studies["patient64541_study1"].reference == "Findings: None Impression: \n1. NO ACUTE PROCESS.\n"
    assert studies["patient64542_study1"].reference == "Findings: \nHeart is normal.\n Impression: Normal."
    assert studies["patient64542_study1"].frontal_image == source / "PNG/valid/patient64542/study1/view1_frontal.png"
    assert [p.name for p in studies["patient64542_study1"].image_paths] == ["view2_lateral.png", "view1_frontal.png"]
    ident = dataset.identity("test")
    assert ident["n_expected"] == 2 and ident["reference_policy"] == "findings_impression"
    assert ident["references_sha256"] and CheXpertPlusRexrank(None).identity("test")["n_expected"] is None
    for s in studies.values():
        assert s.reference_sha256 == sha256_text(s.reference)


def test_chexpert_plus_bad_inputs_are_named(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    rows = fake_chexpert_rows()
    rows[3]["section_impression"] = "Different."
    _chexpert_csv(source / "df_chexpert_plus_240401.csv", rows)
    with pytest.raises(DataError, match=r"df_chexpert_plus_240401.csv:5: study patient64542_study1 has other"):
        prepare_chexpert_plus_rexrank(source, tmp_path / "out", check_counts=False)
    (source / "df_chexpert_plus_240401.csv").write_text("path_to_image,section_findings\nvalid/p/s/v.jpg,x\n")
    with pytest.raises(DataError, match="missing column\\(s\\) section_impression"):
        prepare_chexpert_plus_rexrank(source, tmp_path / "out", check_counts=False)
    with pytest.raises(DataError, match="df_chexpert_plus_240401.csv not found"):
        prepare_chexpert_plus_rexrank(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(DataError, match="is not <split>/patient<N>/study<M>/<view>"):
        study_id_of("valid/view1.jpg")


def test_credentialed_manifests_hold_no_ids_or_text():
    import re

    for name in ("mimic_cxr/rexrank", "chexpert_plus/rexrank"):
        folder = REPO / "data_manifests" / name
        assert not list(folder.rglob("*.jsonl")), name
        text = (folder / "manifest.yaml").read_text()
        assert not re.search(r"\b[sp]?\d{8}\b|patient\d+", text), f"{name}: ids must never be committed"
