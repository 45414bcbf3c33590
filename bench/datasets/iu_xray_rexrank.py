"""IU X-Ray as ReXrank evaluates it: 590 test / 296 valid studies, ReXrank's reference text.

The studies are R2Gen's test and val splits (same ids, same images, same order); the
references come from ReXrank's public files ``ReXRank_IUXray_test.json`` /
``ReXRank_IUXray_valid.json`` (github.com/rajpurkarlab/ReXrank ``data/iu_xray``), which the
user keeps in the data root. The committed manifest holds ids, image paths, the key (frontal)
image and one sha256 per reference policy — no text.

Two registered datasets share the manifest (policies in ``bench.datasets.rexrank_policy``):
``iu_xray/rexrank`` ("Findings: … Impression: …", ReXrank's ground truth) and
``iu_xray/rexrank/findings`` (findings only; equal, study for study, to the ``iu_xray/r2gen``
references — the builder checks it).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.datasets.iu_xray import uid_of
from rrg_bench.errors import DataError
from rrg_bench.manifests import (
    Manifest,
    find_dataset_root,
    load_manifest,
    mismatch_error,
    sha256_file,
    sha256_text,
    write_manifest_dir,
)
from rrg_bench.api.types import Study

NAME = "iu_xray/rexrank"
FINDINGS_NAME = "iu_xray/rexrank/findings"
SPLITS = ("test", "val")
SOURCE_FILES = {"test": "ReXRank_IUXray_test.json", "val": "ReXRank_IUXray_valid.json"}
EXPECTED_STUDIES = {"test": 590, "val": 296}
R2GEN = "iu_xray/r2gen"
ROOT_SUBDIRS = ("iu_xray",)
IMAGE_DIR = "images"

HOW_TO_GET = (
    "The ReXrank IU X-Ray files ReXRank_IUXray_test.json and ReXRank_IUXray_valid.json are in "
    "github.com/rajpurkarlab/ReXrank under data/iu_xray (MIT licence; the text is Open-i's). Put them in a "
    "folder DIR (or DIR/iu_xray), with R2Gen's images/<id>/<k>.png beside them if an image model is to run, "
    "and pass --data-root DIR or set BENCH_DATA_ROOT=DIR."
)


def read_rexrank_json(path: Path) -> dict[str, dict[str, Any]]:
    """A ReXrank data file: ``{study_id: {section_findings, section_impression, image_path, ...}}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object keyed by study id (a ReXrank data file)")
    for sid, entry in data.items():
        if not isinstance(entry, dict) or "section_findings" not in entry or "section_impression" not in entry:
            raise DataError(f"{path}: study {sid} lacks section_findings/section_impression")
    return data


# ----------------------------------------------------------------------------- manifest builder


def build_manifest(source_dir: Path, out_dir: Path) -> Path:
    """Regenerate the committed manifest from the two ReXrank IU files in ``source_dir``.

    Maintainer tool: ``build_manifest(Path("../shared/data/iu_xray"), Path("data_manifests/iu_xray/rexrank"))``.
    Fails unless the ids, order and images equal R2Gen's test/val split and every findings
    text equals the ``iu_xray/r2gen`` reference.
    """
    source_dir = Path(source_dir)
    r2gen = load_manifest(R2GEN)
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    split_extra: dict[str, dict[str, Any]] = {}
    sources = []
    for split in SPLITS:
        path = source_dir / SOURCE_FILES[split]
        if not path.is_file():
            raise DataError(f"build_manifest needs {path}")
        data = read_rexrank_json(path)
        r2gen_rows = r2gen.rows(split)
        if list(data) != [r["study_id"] for r in r2gen_rows]:
            raise DataError(f"{path}: ids or their order differ from R2Gen's {split} split")
        rows, report_field_equal = [], 0
        for entry_id, r2 in zip(data, r2gen_rows):
            entry = data[entry_id]
            images = [f"{IMAGE_DIR}/{p}" for p in entry["image_path"]]
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
                "frontal": f"{IMAGE_DIR}/{entry['key_image_path']}",
                "reference_sha256": sha256_text(gt),
                "findings_sha256": sha256_text(findings),
            })
        if len(rows) != EXPECTED_STUDIES[split]:
            raise DataError(f"{path}: {len(rows)} studies, ReXrank's IU {split} set has {EXPECTED_STUDIES[split]}")
        rows_by_split[split] = rows
        split_extra[split] = {"findings_equal_r2gen_reference": len(rows),
                              "report_field_equals_findings_impression": report_field_equal}
        sources.append({"file": SOURCE_FILES[split], "sha256": sha256_file(path), "role": f"{split} references",
                        "origin": "github.com/rajpurkarlab/ReXrank data/iu_xray"})
    header = {
        "name": NAME,
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


# ----------------------------------------------------------------------------- datasets


@functools.lru_cache(maxsize=1)
def _manifest() -> Manifest:
    return load_manifest(NAME)


class IUXrayRexrank(Dataset):
    """ReXrank's IU X-Ray sets; references "Findings: … Impression: …" from the user's ReXrank files."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "IU X-Ray as ReXrank scores it (590 test / 296 val), 'Findings: … Impression: …'"
    splits: ClassVar[tuple[str, ...]] = SPLITS
    reference_policy: ClassVar[str] = policy.FINDINGS_IMPRESSION

    def root(self) -> Path:
        if self.data_root is None:
            raise DataError(f"{self.name}: no data root given. {HOW_TO_GET}")
        found = find_dataset_root(self.data_root, ROOT_SUBDIRS, tuple(SOURCE_FILES.values()))
        if found is None:
            raise DataError(f"{self.name}: neither {' nor '.join(SOURCE_FILES.values())} in {self.data_root} or "
                            f"{self.data_root / ROOT_SUBDIRS[0]}. {HOW_TO_GET}")
        return found

    def _source(self, split: str) -> tuple[Path, dict[str, dict[str, Any]]]:
        path = self.root() / SOURCE_FILES[split]
        if not path.is_file():
            raise DataError(f"{self.name} {split}: {path} is missing. {HOW_TO_GET}")
        return path, read_rexrank_json(path)

    def _texts(self, split: str) -> tuple[Path, list[dict[str, Any]], dict[str, str], list[str]]:
        """Manifest rows, the reference of each study by this policy, and what differs."""
        rows = _manifest().rows(split)
        path, data = self._source(split)
        key = policy.HASH_KEYS[self.reference_policy]
        texts: dict[str, str] = {}
        problems: list[str] = []
        for row in rows:
            sid = row["study_id"]
            entry = data.get(sid)
            if entry is None:
                problems.append(f"{sid}: missing from {path.name}")
                continue
            text = policy.reference_text(self.reference_policy, entry["section_findings"], entry["section_impression"])
            if text is None or sha256_text(text) != row[key]:
                problems.append(f"{sid}: reference sha256 differs")
                continue
            texts[sid] = text
        expected = {r["study_id"] for r in rows}
        problems += [f"{sid}: in {path.name} but not in the manifest" for sid in data if sid not in expected]
        return path, rows, texts, problems

    def studies(self, split: str) -> list[Study]:
        self.split_check(split)
        path, rows, texts, problems = self._texts(split)
        if problems:
            raise mismatch_error(self.name, split, len(rows), problems, f"text from {path}",
                                 hint=f"Use ReXrank's unmodified {path.name} (sha256 in the manifest card)")
        root = self.root()
        return [Study(
            study_id=row["study_id"], split=split, reference=texts[row["study_id"]],
            reference_sha256=row[policy.HASH_KEYS[self.reference_policy]],
            image_paths=tuple(root / p for p in row["images"]), frontal_image=root / row["frontal"],
            meta={"uid": row["uid"]},
        ) for row in rows]

    def split_check(self, split: str) -> None:
        if split not in SPLITS:
            raise DataError(f"{self.name} has splits {', '.join(SPLITS)}; got {split!r}")

    def verify(self) -> VerifyReport:
        report = VerifyReport(dataset=self.name, data_root=self.data_root, ok=False, how_to_get=HOW_TO_GET)
        try:
            root = self.root()
        except DataError as exc:
            report.missing.append(str(exc))
            return report
        readable = True
        for split in SPLITS:
            try:
                path, rows, _, problems = self._texts(split)
            except DataError as exc:
                report.missing.append(str(exc))
                readable = False
                continue
            if problems:
                report.mismatched += [f"{split}/{p}" for p in problems]
            else:
                report.present.append(f"{split}: {len(rows)} references match the manifest ({path.name})")
            n_images = sum(len(r["images"]) for r in rows)
            absent = sum(not (root / p).is_file() for r in rows for p in r["images"])
            line = f"{split}: images {n_images - absent} of {n_images} under {root / IMAGE_DIR}"
            (report.present if absent == 0 else report.missing).append(line)
        report.ok = readable and not report.mismatched
        return report

    def identity(self, split: str) -> dict[str, Any]:
        self.split_check(split)
        return policy.identity(_manifest(), _manifest().rows(split), name=self.name, split=split,
                               policy=self.reference_policy)


class IUXrayRexrankFindings(IUXrayRexrank):
    """The same studies scored against ReXrank's findings section alone (its findings-only track)."""

    name: ClassVar[str] = FINDINGS_NAME
    description: ClassVar[str] = "IU X-Ray as ReXrank scores it (590 test / 296 val), findings only"
    reference_policy: ClassVar[str] = policy.FINDINGS
