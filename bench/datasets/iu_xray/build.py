"""Maintainer tools: regenerate the committed IU X-Ray manifests from the public source files.

Why they are kept: a committed manifest is only trustworthy if it can be rebuilt from the
sources it names, byte for byte (tests rebuild both and compare). The builders refuse to
write a manifest whose frontal choice, ids, order or findings disagree with ReXrank's files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.datasets.base import read_json
from rrg_bench.datasets.iu_xray import r2gen, rexrank
from rrg_bench.datasets.iu_xray.openi import (
    ANNOTATION,
    PROJECTIONS_CSV,
    REPORTS_CSV,
    choose_frontal,
    read_openi_findings,
    read_projections,
    uid_of,
)
from rrg_bench.datasets.rexrank_json import read_rexrank_json
from rrg_bench.errors import DataError
from rrg_bench.manifests import load_manifest, name_some, sha256_file, sha256_text, write_manifest_dir

# ----------------------------------------------------------------------------- iu_xray/r2gen


def build_r2gen_manifest(source_dir: Path, out_dir: Path) -> Path:
    """Regenerate the ``iu_xray/r2gen`` manifest from the five IU source files in ``source_dir``.

    Maintainer tool: ``build_r2gen_manifest(Path("../shared/data/iu_xray"), Path("data_manifests/iu_xray/r2gen"))``.
    Fails if any test/val frontal differs from ReXrank's ``key_image_path``.
    """
    source_dir = Path(source_dir)
    paths = {n: source_dir / n for n in (ANNOTATION, REPORTS_CSV, PROJECTIONS_CSV, *rexrank.SOURCE_FILES.values())}
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        raise DataError(f"build_r2gen_manifest needs {', '.join(absent)}")
    annotation = read_json(paths[ANNOTATION])
    findings = read_openi_findings(paths[REPORTS_CSV])
    projections = read_projections(paths[PROJECTIONS_CSV])
    keys = {split: read_json(paths[f]) for split, f in rexrank.SOURCE_FILES.items()}

    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    split_extra: dict[str, dict[str, Any]] = {}
    disagreements: list[str] = []
    for split in r2gen.SPLITS:
        rows, differ = _r2gen_rows(split, annotation[split], findings, projections, keys.get(split))
        disagreements += differ
        rows_by_split[split] = rows
        extra: dict[str, Any] = {"frontal_source": dict(sorted(Counter(r["frontal_source"] for r in rows).items()))}
        if split in keys:
            extra["frontal_equals_rexrank_key"] = len(rows) - len(differ)
        split_extra[split] = extra
    if disagreements:
        raise DataError(f"frontal differs from ReXrank key_image_path for {name_some(disagreements)}")
    header = _r2gen_header(paths, findings, projections, sum(len(r) for r in rows_by_split.values()))
    return write_manifest_dir(Path(out_dir), header, rows_by_split, split_extra=split_extra)


def _r2gen_rows(split: str, entries: list[dict[str, Any]], findings: Mapping[int, str],
                projections: Mapping[int, list[tuple[str, str]]],
                keys: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The split's rows, and the studies whose frontal differs from ReXrank's key image."""
    rows, disagreements = [], []
    for entry in entries:
        sid, uid = entry["id"], uid_of(entry["id"])
        if findings.get(uid) != entry["report"]:
            raise DataError(f"{sid}: annotation.json report differs from indiana_reports.csv findings")
        choice = choose_frontal(projections[uid])
        images = [f"images/{p}" for p in entry["image_path"]]
        if [Path(p).name for p in entry["image_path"]] != ["0.png", "1.png"]:
            raise DataError(f"{sid}: unexpected image_path {entry['image_path']}")
        if keys is not None and int(Path(keys[sid]["key_image_path"]).stem) != choice.index:
            disagreements.append(f"{split}/{sid}")
        rows.append({
            "study_id": sid,
            "uid": uid,
            "images": images,
            "frontal": images[choice.index],
            "views": list(choice.views),
            "frontal_source": choice.source,
            "reference_sha256": sha256_text(entry["report"]),
        })
    if len(rows) != r2gen.EXPECTED_STUDIES[split]:
        raise DataError(f"annotation.json {split} has {len(rows)} studies, R2Gen's has {r2gen.EXPECTED_STUDIES[split]}")
    return rows, disagreements


def _r2gen_header(paths: Mapping[str, Path], findings: Mapping[int, str],
                  projections: Mapping[int, list[tuple[str, str]]], included: int) -> dict[str, Any]:
    n_reports = len(findings)
    with_findings = {uid for uid, text in findings.items() if text.strip()}
    two_images = {uid for uid in with_findings if len(projections.get(uid, ())) >= 2}
    kaggle = "kaggle.com/datasets/raddar/chest-xrays-indiana-university"
    return {
        "name": r2gen.NAME,
        "version": "1",
        "description": (
            "IU X-Ray (Indiana University chest X-rays via NLM Open-i) with R2Gen's split: 2,069 / 296 / 590 "
            "studies, two images each, findings section as the reference."
        ),
        "reference_policy": "findings",
        "reference_policy_detail": (
            "R2Gen annotation.json 'report' exactly as stored (= Open-i findings, = indiana_reports.csv "
            "'findings' byte for byte); sha256 of its UTF-8 bytes, no normalisation."
        ),
        "view_policy": (
            "images = R2Gen image_path (images/<id>/0.png, 1.png); R2Gen index k = k-th image of the report in "
            "sorted Open-i PNG-name order; frontal = first of 0.png/1.png whose Open-i projection is Frontal, "
            "else 1.png (ReXrank key_image_path convention). frontal_source says which case applies."
        ),
        "sources": [
            {"file": ANNOTATION, "sha256": sha256_file(paths[ANNOTATION]), "role": "split and reference text",
             "origin": "R2Gen iu_xray archive; = github.com/cuhksz-nlp/R2Gen refs/pull/26/head "
                       "data/iu_xray/r2gen/annotation.json"},
            {"file": REPORTS_CSV, "sha256": sha256_file(paths[REPORTS_CSV]),
             "role": "reference text when annotation.json is absent", "origin": kaggle},
            {"file": PROJECTIONS_CSV, "sha256": sha256_file(paths[PROJECTIONS_CSV]),
             "role": "view of each Open-i image", "origin": kaggle},
            *({"file": f, "sha256": sha256_file(paths[f]), "role": f"check of the frontal choice ({split})",
               "origin": "github.com/rajpurkarlab/ReXrank data/iu_xray"} for split, f in rexrank.SOURCE_FILES.items()),
        ],
        "exclusions": {
            "openi_reports_in_kaggle_csv": n_reports,
            "no_findings": n_reports - len(with_findings),
            "fewer_than_two_images": len(with_findings) - len(two_images),
            "included": included,
        },
    }


# ----------------------------------------------------------------------------- iu_xray/rexrank


def build_rexrank_manifest(source_dir: Path, out_dir: Path) -> Path:
    """Regenerate the ``iu_xray/rexrank`` manifest from the two ReXrank IU files in ``source_dir``.

    Maintainer tool: ``build_rexrank_manifest(Path("../shared/data/iu_xray"), Path("data_manifests/iu_xray/rexrank"))``.
    Fails unless the ids, order and images equal R2Gen's test/val split and every findings
    text equals the ``iu_xray/r2gen`` reference.
    """
    source_dir = Path(source_dir)
    r2gen_manifest = load_manifest(r2gen.NAME)
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    split_extra: dict[str, dict[str, Any]] = {}
    sources = []
    for split in rexrank.SPLITS:
        path = source_dir / rexrank.SOURCE_FILES[split]
        if not path.is_file():
            raise DataError(f"build_rexrank_manifest needs {path}")
        rows, report_field_equal = _rexrank_rows(path, split, read_rexrank_json(path), r2gen_manifest.rows(split))
        expected = rexrank.EXPECTED_STUDIES[split]
        if len(rows) != expected:
            raise DataError(f"{path}: {len(rows)} studies, ReXrank's IU {split} set has {expected}")
        rows_by_split[split] = rows
        split_extra[split] = {"findings_equal_r2gen_reference": len(rows),
                              "report_field_equals_findings_impression": report_field_equal}
        sources.append({"file": rexrank.SOURCE_FILES[split], "sha256": sha256_file(path), "role": f"{split} references",
                        "origin": "github.com/rajpurkarlab/ReXrank data/iu_xray"})
    header = {
        "name": rexrank.NAME,
        "version": "1",
        "description": (
            "IU X-Ray as evaluated by ReXrank (rexrank.ai): R2Gen's 590 test and 296 val studies, references "
            "from ReXrank's data files."
        ),
        "reference_policy": policy.FINDINGS_IMPRESSION,
        "reference_policy_detail": policy.POLICY_DETAIL[policy.FINDINGS_IMPRESSION],
        "reference_policies": {p: {"row_key": policy.HASH_KEYS[p], "detail": policy.POLICY_DETAIL[p]}
                               for p in (policy.FINDINGS_IMPRESSION, policy.FINDINGS)},
        "view_policy": "images = ReXrank image_path under images/; frontal = ReXrank key_image_path.",
        "sources": sources,
        "exclusions": {},
    }
    return write_manifest_dir(Path(out_dir), header, rows_by_split, split_extra=split_extra)


def _rexrank_rows(path: Path, split: str, data: dict[str, dict[str, Any]],
                  r2gen_rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows of one ReXrank file, and how many studies' ``report`` field is the ground-truth string."""
    if list(data) != [r["study_id"] for r in r2gen_rows]:
        raise DataError(f"{path}: ids or their order differ from R2Gen's {split} split")
    rows, report_field_equal = [], 0
    for entry_id, r2 in zip(data, r2gen_rows):
        entry = data[entry_id]
        images = [f"{rexrank.IMAGE_DIR}/{p}" for p in entry["image_path"]]
        if images != r2["images"]:
            raise DataError(f"{path}: study {entry_id} image_path {entry['image_path']} differs from R2Gen's")
        gt = policy.ground_truth(entry["section_findings"], entry["section_impression"])
        findings = policy.reference_text(policy.FINDINGS, entry["section_findings"], None)
        if findings is None or sha256_text(findings) != r2["reference_sha256"]:
            raise DataError(f"{path}: study {entry_id} section_findings differs from the R2Gen reference")
        report_field_equal += entry.get("report") == gt
        rows.append({
            "study_id": entry_id,
            "uid": uid_of(entry_id),
            "images": images,
            "frontal": f"{rexrank.IMAGE_DIR}/{entry['key_image_path']}",
            "reference_sha256": sha256_text(gt),
            "findings_sha256": sha256_text(findings),
        })
    return rows, report_field_equal
