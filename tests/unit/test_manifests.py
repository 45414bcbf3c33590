"""Manifest hashing helpers, writing/loading, and the checks that make a modified manifest fail."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import tomllib
import yaml

from rrg_bench.errors import DataError, UsageError
from rrg_bench.manifests import (
    find_dataset_root,
    load_manifest,
    load_manifest_dir,
    mismatch_error,
    references_sha256,
    sha256_text,
    study_ids_sha256,
    write_manifest_dir,
)

REPO = Path(__file__).resolve().parents[2]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sha256_text_hashes_the_exact_utf8_bytes():
    assert sha256_text("Heart size normal.") == _sha(b"Heart size normal.")
    assert sha256_text("Heart size normal. ") != sha256_text("Heart size normal.")  # no strip
    assert sha256_text("a\r\nb") != sha256_text("a\nb")  # no newline conversion
    assert sha256_text("e\u0301") != sha256_text("\u00e9")  # no Unicode normalisation
    assert sha256_text("\u00e9") == _sha("\u00e9".encode("utf-8"))


def test_references_and_ids_hashes_are_canonical_json_of_the_ordered_lists():
    pairs = [("b", "1" * 64), ("a", "2" * 64)]
    assert references_sha256(pairs) == _sha(f'[["b","{"1" * 64}"],["a","{"2" * 64}"]]'.encode())
    assert references_sha256(pairs) != references_sha256(reversed(pairs))
    assert study_ids_sha256(["b", "a"]) == _sha(b'["b","a"]')
    assert study_ids_sha256(["\u00e9"]) == _sha('["\u00e9"]'.encode("utf-8"))


def _rows(n: int) -> list[dict]:
    return [{"study_id": f"s{i}", "images": [f"images/s{i}.png"], "reference_sha256": sha256_text(f"text {i}")}
            for i in range(n)]


def test_written_manifest_loads_and_verifies(tmp_path):
    header = {"name": "toy/v", "version": "3", "description": "toy", "reference_policy": "findings",
              "view_policy": "one image", "sources": [], "exclusions": {"no_findings": 2}}
    write_manifest_dir(tmp_path, header, {"train": _rows(3), "test": _rows(2)}, split_extra={"test": {"note": 1}})
    manifest = load_manifest_dir(tmp_path)
    assert (manifest.name, manifest.version, manifest.reference_policy) == ("toy/v", "3", "findings")
    assert manifest.splits["train"].studies == 3 and manifest.splits["test"].images == 2
    assert manifest.data["splits"]["test"]["note"] == 1
    assert manifest.sha256 == _sha((tmp_path / "manifest.yaml").read_bytes())
    assert [r["study_id"] for r in manifest.rows("test")] == ["s0", "s1"]
    identity = manifest.identity("test")
    assert identity["n_expected"] == 2 and identity["study_ids_sha256"] == study_ids_sha256(["s0", "s1"])
    assert identity["references_sha256"] == references_sha256((r["study_id"], r["reference_sha256"]) for r in _rows(2))
    with pytest.raises(UsageError, match="no split 'val'"):
        manifest.rows("val")
    # writing the same input twice gives the same bytes
    again = tmp_path / "again"
    write_manifest_dir(again, header, {"train": _rows(3), "test": _rows(2)}, split_extra={"test": {"note": 1}})
    for name in ("manifest.yaml", "train.jsonl", "test.jsonl"):
        assert (again / name).read_bytes() == (tmp_path / name).read_bytes()


def test_an_edited_split_file_fails_with_its_name(tmp_path):
    header = {"name": "toy/v", "version": "1", "reference_policy": "findings"}
    write_manifest_dir(tmp_path, header, {"test": _rows(3)})
    path = tmp_path / "test.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"s1"', b'"s9"'))
    with pytest.raises(DataError, match=r"test\.jsonl has sha256 .* manifest\.yaml says"):
        load_manifest_dir(tmp_path).rows("test")


def _rewrite(tmp_path: Path, split: str, lines: list[str], studies: int | None = None) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    (tmp_path / f"{split}.jsonl").write_bytes(data)
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text())
    manifest["splits"][split]["jsonl_sha256"] = _sha(data)
    if studies is not None:
        manifest["splits"][split]["studies"] = studies
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump(manifest))


@pytest.mark.parametrize(
    ("lines", "studies", "message"),
    [
        (['{"study_id":"a","reference_sha256":"%s"}' % ("0" * 64)], 2, "has 1 studies, manifest.yaml says 2"),
        (['{"study_id":"a","reference_sha256":"%s"}' % ("0" * 64)] * 2, 2, "test.jsonl:2: duplicate study_id a"),
        (['{"study_id":"a","reference_sha256":"xyz"}'], 1, "test.jsonl:1: study a: 'reference_sha256'"),
        (['{"study_id":"a"'], 1, "test.jsonl:1: not valid JSON"),
        (['{"reference_sha256":"%s"}' % ("0" * 64)], 1, "test.jsonl:1: missing or empty 'study_id'"),
    ],
    ids=["count", "duplicate", "bad-hash", "not-json", "no-id"],
)
def test_malformed_split_rows_are_named_by_line(tmp_path, lines, studies, message):
    write_manifest_dir(tmp_path, {"name": "toy/v", "version": "1", "reference_policy": "findings"}, {"test": _rows(1)})
    _rewrite(tmp_path, "test", lines, studies)
    with pytest.raises(DataError, match=re.escape(message)):
        load_manifest_dir(tmp_path).rows("test")


def test_missing_manifest_and_missing_keys(tmp_path):
    with pytest.raises(DataError, match="no manifest.yaml"):
        load_manifest_dir(tmp_path)
    (tmp_path / "manifest.yaml").write_text("name: x\n")
    with pytest.raises(DataError, match="missing key"):
        load_manifest_dir(tmp_path)


def test_mismatch_error_names_twenty_and_counts_the_rest():
    problems = [f"id{i}: reference sha256 differs" for i in range(25)]
    message = str(mismatch_error("toy", "test", 100, problems, "text from X"))
    assert "25 of 100 studies differ" in message and "id19:" in message and "id20:" not in message
    assert "(5 more)" in message


def test_find_dataset_root_accepts_the_folder_or_a_named_subfolder(tmp_path):
    assert find_dataset_root(None, ("iu_xray",), ("annotation.json",)) is None
    assert find_dataset_root(tmp_path, ("iu_xray",), ("annotation.json",)) is None
    (tmp_path / "iu_xray").mkdir()
    (tmp_path / "iu_xray" / "annotation.json").write_text("{}")
    assert find_dataset_root(tmp_path, ("iu_xray",), ("annotation.json",)) == tmp_path / "iu_xray"
    (tmp_path / "annotation.json").write_text("{}")
    assert find_dataset_root(tmp_path, ("iu_xray",), ("annotation.json",)) == tmp_path


@pytest.mark.parametrize("name", ["iu_xray/r2gen", "demo", "mimic_cxr/official"])
def test_committed_manifests_load_from_the_package(name):
    manifest = load_manifest(name)
    assert manifest.name == name and manifest.splits
    for split in manifest.splits:
        if manifest.has_rows(split):
            assert len(manifest.rows(split)) == manifest.splits[split].studies


def test_mimic_manifest_holds_no_ids():
    manifest = load_manifest("mimic_cxr/official")
    assert not any(manifest.has_rows(s) for s in manifest.splits)
    text = (REPO / "data_manifests" / "mimic_cxr" / "official" / "manifest.yaml").read_text()
    assert not re.search(r"\b[sp]?\d{8}\b", text), "MIMIC study/subject ids must never be committed"
    assert not list((REPO / "data_manifests" / "mimic_cxr").rglob("*.jsonl"))


def test_malformed_dataset_names_are_refused():
    with pytest.raises(UsageError):
        load_manifest("../etc")


def test_every_shipped_data_file_is_in_a_package_and_matched_by_package_data():
    """setuptools ships package data per package folder only: each data folder needs an
    __init__.py, and each file's suffix must match pyproject's package-data globs."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["*"]
    suffixes = {g.removeprefix("*") for g in globs}
    root = REPO / "data_manifests"
    for path in root.rglob("*"):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc"):
            continue
        assert (path.parent / "__init__.py").is_file(), f"{path.parent} is not a package: {path.name} would not ship"
        assert path.suffix in suffixes, f"{path} is not matched by package-data globs {globs}"


def test_manifest_rows_of_a_packaged_manifest_are_json_objects():
    rows = load_manifest("iu_xray/r2gen").rows("test")
    assert rows[0] == json.loads(json.dumps(rows[0]))
    assert set(rows[0]) >= {"study_id", "uid", "images", "frontal", "views", "frontal_source", "reference_sha256"}
