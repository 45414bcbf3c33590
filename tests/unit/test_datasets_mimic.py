"""mimic_cxr/official: the MIT-LCP section rules and ``prepare_mimic_cxr`` on a tiny fake
PhysioNet tree whose reports were invented for this test (no MIMIC text anywhere)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import rrg_bench.datasets.mimic_cxr.prepare as mimic_prepare
from helpers.mimic_fake import FakeStudy, report, write_tree
from rrg_bench.datasets.mimic_cxr.official import PREPARED_SUBDIR, MimicCxrOfficial
from rrg_bench.datasets.mimic_cxr.prepare import prepare_mimic_cxr
from rrg_bench.datasets.mimic_cxr.sections import (
    CUSTOM_RULE_STUDIES,
    findings_section,
    impression_section,
    last_section,
    normalise_section_name,
    split_sections,
)
from rrg_bench.errors import DataError
from rrg_bench.manifests import sha256_bytes, sha256_text

TITLE = "                                 FINAL REPORT\n"

# ----------------------------------------------------------------------------- section rules
# Expected values were produced by running the upstream MIT-LCP section_parser.section_text
# on these same texts (and a 20,000-text randomised comparison agreed on every section).

SECTION_CASES = {
    "standard": (
        report(("EXAMINATION", "CHEST (PA AND LAT)"), ("INDICATION", "___ with cough."),
               ("FINDINGS", "The lungs are clear.  No pleural effusion.\n Heart size is normal."),
               ("IMPRESSION", "No acute cardiopulmonary process.")),
        "The lungs are clear.  No pleural effusion.\n Heart size is normal.",
        ["preamble", "examination", "indication", "findings", "impression"],
    ),
    "no_headers": (TITLE + " Portable chest radiograph.\n Lungs are clear.\n", None, ["full report"]),
    "impression_only": (report(("INDICATION", "Fever."), ("IMPRESSION", "Mild pulmonary edema.")), None,
                        ["preamble", "indication", "impression"]),
    "study_description_header": (
        report(("PA AND LATERAL VIEWS OF THE CHEST", "Heart size is mildly enlarged.\n No effusion."),
               ("IMPRESSION", "Mild cardiomegaly.")),
        "Heart size is mildly enlarged.\n No effusion.", ["preamble", "findings", "impression"],
    ),
    "findings_and_impression": (report(("FINDINGS AND IMPRESSION", "Right lower lobe pneumonia.")), None,
                                ["preamble", "impression"]),
    "empty_findings": (TITLE + " FINDINGS: \n \n IMPRESSION:  Small left effusion.\n", None,
                       ["preamble", "impression"]),
    "two_findings": (report(("FINDINGS", "Old text about the lungs."), ("FINDINGS", "New text: lungs are clear.")),
                     "New text: lungs are clear.", ["preamble", "findings", "findings"]),
    "header_on_next_line": (TITLE + " FINDINGS:\n IMPRESSION: No acute process.\n", "IMPRESSION: No acute process.",
                            ["preamble", "findings"]),
    "typo_header": (report(("FINDNGS", "Stable mediastinal contours."), ("CONCLUSION", "Stable.")),
                    "Stable mediastinal contours.", ["preamble", "findings", "impression"]),
    "lowercase_header": (TITLE + " Findings:  Lungs are clear.\n \n", None, ["full report", "last_paragraph"]),
    "inline_header": (report(("FINDINGS", "Lungs clear. IMPRESSION: normal chest.")),
                      "Lungs clear. IMPRESSION: normal chest.", ["preamble", "findings"]),
    "last_paragraph": (report(("INDICATION", "Line placement."), ("COMPARISON", "None."))
                       + " Right PICC tip in the SVC.\n",
                       None, ["preamble", "indication", "comparison", "last_paragraph"]),
    "digits_in_header": (report(("FINDINGS 2", "Not a header."), ("TECHNIQUE", "AP portable.")), None,
                         ["preamble", "technique", "last_paragraph"]),
    "wet_read_then_findings": (report(("WET READ", "Clear lungs."), ("FINDINGS", "Clear lungs, no effusion.")),
                               "Clear lungs, no effusion.", ["preamble", "wet read", "findings"]),
}


@pytest.mark.parametrize("case", sorted(SECTION_CASES))
def test_section_rules_match_upstream(case):
    text, findings, names = SECTION_CASES[case]
    assert [s.name for s in split_sections(text)] == names
    assert findings_section(text) == findings


def test_section_offsets_text_and_last_paragraph():
    text = SECTION_CASES["last_paragraph"][0]
    sections = split_sections(text)
    assert [s.text for s in sections] == [TITLE + " ", " Line placement.\n ", " None.", " Right PICC tip in the SVC.\n"]
    assert [s.start for s in sections] == [0, 59, 91, 97]  # upstream's section_idx, quirks included
    assert last_section(text, "last_paragraph") == "Right PICC tip in the SVC."
    standard = SECTION_CASES["standard"][0]
    assert impression_section(standard) == "No acute cardiopulmonary process."
    for section in split_sections(standard)[1:]:
        assert standard[section.start:section.start + len(section.text)] == section.text


@pytest.mark.parametrize(
    ("header", "name"),
    [("IMPRESSION", "impression"), ("CONCLUSION", "impression"), ("FINDINGS/IMPRESSION", "impression"),
     ("REASON FOR EXAM", "indication"), ("CHEST, TWO VIEWS", "findings"), ("PORTABLE AP CHEST", "findings"),
     ("FINAL ADDENDUM", "addendum"), ("HISTORY OF CHEST PAIN", "history"), ("NDICATION", "impression"),
     ("IMPRESSION AND RECOMMENDATION", "impression"), ("PA AND LAT", "findings"), ("NOTIFICATION", "notification"),
     ("COMPARISONS", "comparison"), ("BONE WINDOW", "findings"), ("SOMETHING ELSE", "something else")],
)
def test_section_name_normalisation(header, name):
    assert normalise_section_name(header) == name


def test_custom_rule_list_has_the_54_upstream_reports():
    assert len(CUSTOM_RULE_STUDIES) == 54 and all(re.fullmatch(r"s5\d{7}", s) for s in CUSTOM_RULE_STUDIES)


# ----------------------------------------------------------------------------- fake PhysioNet tree

FINDINGS_1 = "The lungs are clear.  No pleural effusion or\n pneumothorax.  Heart size is normal."


def fake_studies() -> list[FakeStudy]:
    std = lambda findings, impression="No acute process.": report(  # noqa: E731
        ("EXAMINATION", "CHEST (PA AND LAT)"), ("INDICATION", "___ with dyspnea."), ("FINDINGS", findings),
        ("IMPRESSION", impression))
    return [
        # test
        FakeStudy("10000001", "50000001", "test", std(FINDINGS_1), [("d0002", "LATERAL"), ("d0001", "PA")]),
        FakeStudy("10000001", "50000002", "test", report(("FINDNGS", "Small left effusion.")), [("d0003", "AP")]),
        FakeStudy("10000001", "50000003", "test", report(("IMPRESSION", "Mild edema.")), [("d0004", "PA")]),
        FakeStudy("10000001", "50000004", "test", std("Clear lungs."), [("d0005", "LATERAL"), ("d0006", "LL")]),
        FakeStudy("10000001", "50000012", "test", report(("FINDINGS AND IMPRESSION", "Pneumonia.")), [("d0020", "PA")]),
        # validate
        FakeStudy("10000002", "50000005", "validate",
                  report(("PA AND LATERAL VIEWS OF THE CHEST", "Enlarged heart.\n Small effusions.")),
                  [("a0007", "AP"), ("b0008", "PA"), ("c0009", "LATERAL")]),
        FakeStudy("10000002", "50000006", "validate", None, [("d0010", "PA")]),
        # train
        FakeStudy("11000003", "50000007", "train",
                  report(("FINDINGS", "First findings text."), ("FINDINGS", "Second findings text.")),
                  [("d0011", "PA")]),
        FakeStudy("11000003", "50000008", "train", TITLE + " FINDINGS:\n IMPRESSION: No acute process.\n",
                  [("d0012", "AP")]),
        FakeStudy("11000003", "50913680", "train", std("Custom rule report with findings."), [("d0013", "PA")]),
        FakeStudy("11000003", "50000010", "train", std("Lines in place.\n No pneumothorax."), [("d0014", "PA")],
                  crlf=True),
        FakeStudy("11000003", "50000011", "train", TITLE + " FINDINGS: \n \n IMPRESSION:  Effusion.\n",
                  [("d0015", "PA")]),
        FakeStudy("11000003", "50000013", "train", TITLE + " Heart normal.\n Lungs clear.\n", [("d0016", "PA")]),
    ]


EXPECTED_INCLUDED = {
    "test": {"50000001": "The lungs are clear. No pleural effusion or pneumothorax. Heart size is normal.",
             "50000002": "Small left effusion."},
    "val": {"50000005": "Enlarged heart. Small effusions."},
    "train": {"50000007": "Second findings text.", "50000008": "IMPRESSION: No acute process.",
              "50000010": "Lines in place. No pneumothorax."},
}
EXPECTED_EXCLUDED = {
    "test": {"no_report": 0, "custom_rule_report": 0, "no_findings": 2, "no_frontal_image": 1},
    "val": {"no_report": 1, "custom_rule_report": 0, "no_findings": 0, "no_frontal_image": 0},
    "train": {"no_report": 0, "custom_rule_report": 1, "no_findings": 2, "no_frontal_image": 0},
}


@pytest.fixture
def physionet(tmp_path) -> Path:
    return write_tree(tmp_path / "physionet.org" / "files" / "mimic-cxr-jpg" / "2.0.0", fake_studies(), jpgs=True)


def test_published_counts_are_checked(physionet, tmp_path):
    with pytest.raises(DataError,
                       match=r"not the published MIMIC-CXR 2.0.0 split: train: 6 studies \(published 222,758\)"):
        prepare_mimic_cxr(physionet, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_prepare_on_a_fake_tree(physionet, tmp_path):
    tasks, advanced = [], []

    def progress(description, total):
        tasks.append((description, total))
        return lambda n=1: advanced.append(n)

    out = tmp_path / "data" / PREPARED_SUBDIR
    result = prepare_mimic_cxr(tmp_path / "physionet.org", out, check_counts=False, progress=progress)
    assert result.official is False and len(result.count_mismatches) == 6
    assert tasks == [("sectioning MIMIC-CXR reports", 13)] and sum(advanced) == 13
    summary = result.summary()
    assert "official: False" in summary
    assert "test: 2 of 5 studies (3 images); excluded: no_findings 2, no_frontal_image 1" in summary
    for split in ("train", "val", "test"):
        assert result.splits[split].excluded == EXPECTED_EXCLUDED[split], split
        assert result.splits[split].included == len(EXPECTED_INCLUDED[split])
    assert (result.splits["test"].studies_in_split, result.splits["test"].images_in_split) == (5, 7)
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["official"] is False and manifest["count_check"].startswith("failed")
    assert {s["file"] for s in manifest["sources"]} >= {"mimic-cxr-2.0.0-split.csv.gz",
                                                         "mimic-cxr-2.0.0-metadata.csv.gz"}

    dataset = MimicCxrOfficial(tmp_path / "data")
    for split, expected in EXPECTED_INCLUDED.items():
        studies = dataset.studies(split)
        assert {s.study_id: s.reference for s in studies} == expected
        for study in studies:
            assert study.reference_sha256 == sha256_text(study.reference)
            assert study.meta["official"] is False
    first = dataset.studies("test")[0]
    image_root = physionet.resolve()
    assert first.image_paths == tuple(image_root / f"files/p10/p10000001/s50000001/{d}.jpg" for d in ("d0001", "d0002"))
    assert first.frontal_image == image_root / "files/p10/p10000001/s50000001/d0001.jpg"
    assert first.meta["views"] == ("PA", "LATERAL") and first.meta["subject_id"] == "10000001"
    val = dataset.studies("val")[0]
    assert val.frontal_image.name == "b0008.jpg"  # PA preferred over an AP with a smaller dicom_id
    assert dataset.studies("test")[1].frontal_image.name == "d0003.jpg"  # AP when there is no PA

    report_ = dataset.verify()
    assert not report_.ok and report_.mismatched[0].startswith("split counts differ")
    assert any("test: frontal images 2 of 2" in line for line in report_.present)
    identity = dataset.identity("test")
    assert identity["official"] is False and identity["n_expected"] == 2
    assert identity["prepared_manifest_sha256"] == sha256_bytes((out / "manifest.yaml").read_bytes())


def test_zip_reports_give_the_same_study_lists(physionet, tmp_path):
    zipped = write_tree(tmp_path / "zipped", fake_studies(), reports="zip")
    prepare_mimic_cxr(physionet, tmp_path / "a", check_counts=False)
    b = prepare_mimic_cxr(zipped, tmp_path / "b", check_counts=False)
    assert "mimic-cxr-reports.zip" in b.sources and b.reports_source.endswith("mimic-cxr-reports.zip")
    for split in ("train", "val", "test"):
        rows_a = [json.loads(x) for x in (tmp_path / "a" / f"{split}.jsonl").read_text().splitlines()]
        rows_b = [json.loads(x) for x in (tmp_path / "b" / f"{split}.jsonl").read_text().splitlines()]
        assert [(r["study_id"], r["reference_sha256"], r["frontal"]) for r in rows_a] == \
               [(r["study_id"], r["reference_sha256"], r["frontal"]) for r in rows_b]


def test_matching_published_counts_make_the_data_official(physionet, tmp_path, monkeypatch):
    counts = {"train": {"studies": 6, "images": 6}, "val": {"studies": 2, "images": 4},
              "test": {"studies": 5, "images": 7}}
    monkeypatch.setattr(mimic_prepare, "published_counts", lambda: counts)
    result = prepare_mimic_cxr(physionet, tmp_path / "data" / "mimic_cxr")  # <data root>/mimic_cxr is found too
    assert result.official and result.count_mismatches == []
    dataset = MimicCxrOfficial(tmp_path / "data")
    assert dataset.verify().ok and dataset.identity("val")["official"] is True


def test_an_edited_prepared_reference_is_named(physionet, tmp_path):
    out = tmp_path / "prepared"
    prepare_mimic_cxr(physionet, out, check_counts=False)
    path = out / "train.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[1]["reference"] += " Edited."
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(data)
    dataset = MimicCxrOfficial(out)
    with pytest.raises(DataError, match=r"train\.jsonl has sha256"):
        dataset.studies("train")
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    manifest["splits"]["train"]["jsonl_sha256"] = sha256_bytes(data)
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    dataset = MimicCxrOfficial(out)
    with pytest.raises(DataError, match=rf"1 of 3 studies differ .*{rows[1]['study_id']}: reference sha256 differs"):
        dataset.studies("train")
    assert f"train/{rows[1]['study_id']}: reference sha256 differs" in dataset.verify().mismatched


def test_missing_inputs_and_unprepared_roots_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    with pytest.raises(DataError, match="does not exist"):
        prepare_mimic_cxr(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(DataError, match=r"mimic-cxr-2.0.0-split.csv.gz, mimic-cxr-2.0.0-metadata.csv.gz not found"):
        prepare_mimic_cxr(tmp_path, tmp_path / "out")
    no_reports = write_tree(tmp_path / "jpg_only", fake_studies())
    for txt in (no_reports / "reports").rglob("*.txt"):
        txt.unlink()
    with pytest.raises(DataError, match="no MIMIC-CXR reports under"):
        prepare_mimic_cxr(no_reports, tmp_path / "out", check_counts=False)
    for dataset in (MimicCxrOfficial(), MimicCxrOfficial(tmp_path)):
        with pytest.raises(DataError, match="bench data prepare mimic_cxr"):
            dataset.studies("test")
        assert not dataset.verify().ok
        identity = dataset.identity("test")
        assert identity["manifest_version"] == "1" and identity["references_sha256"] is None


def test_prepare_refuses_to_write_into_a_git_working_tree(physionet, tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(DataError, match="inside the git working tree"):
        prepare_mimic_cxr(physionet, tmp_path / "repo" / "data" / "mimic", check_counts=False)
    assert not (tmp_path / "repo" / "data").exists()


def test_malformed_split_file_names_the_line(tmp_path):
    import gzip

    root = write_tree(tmp_path / "bad", fake_studies())
    with gzip.open(root / "mimic-cxr-2.0.0-split.csv.gz", "wt") as fh:
        fh.write("dicom_id,study_id,subject_id,split\nd1,50000001,10000001,holdout\n")
    with pytest.raises(DataError, match=r"split.csv.gz:2: unknown split 'holdout'"):
        prepare_mimic_cxr(root, tmp_path / "out", check_counts=False)
    (root / "mimic-cxr-2.0.0-split.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot be read as a gzipped UTF-8 CSV"):
        prepare_mimic_cxr(root, tmp_path / "out", check_counts=False)


def test_reports_with_invalid_utf8_are_named(physionet, tmp_path):
    bad = next((physionet / "reports").rglob("s50000001.txt"))
    bad.write_bytes(b"\n FINDINGS:  caf\xe9\n")
    with pytest.raises(DataError, match=r"s50000001\.txt: not valid UTF-8"):
        prepare_mimic_cxr(physionet, tmp_path / "out", check_counts=False)
