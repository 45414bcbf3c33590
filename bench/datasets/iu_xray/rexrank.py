"""IU X-Ray as ReXrank evaluates it: 590 test / 296 valid studies, ReXrank's reference text.

The studies are R2Gen's test and val splits (same ids, same images, same order); the
references come from ReXrank's public files ``ReXRank_IUXray_test.json`` /
``ReXRank_IUXray_valid.json`` (github.com/rajpurkarlab/ReXrank ``data/iu_xray``), which the
user keeps in the data root. The committed manifest holds ids, image paths, the key (frontal)
image and one sha256 per reference policy — no text (``build.build_rexrank_manifest`` writes it).

Two registered datasets share the manifest (policies in ``rrg_bench.datasets.rexrank_policy``):
``iu_xray/rexrank`` ("Findings: … Impression: …", ReXrank's ground truth) and
``iu_xray/rexrank/findings`` (findings only; equal, study for study, to the ``iu_xray/r2gen``
references — the builder checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.api.types import Study
from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.datasets.base import committed_manifest, note_missing
from rrg_bench.datasets.rexrank_json import read_rexrank_json
from rrg_bench.errors import DataError
from rrg_bench.manifests import find_dataset_root, identity_block, mismatch_error, sha256_text

NAME = "iu_xray/rexrank"
FINDINGS_NAME = "iu_xray/rexrank/findings"
SPLITS = ("test", "val")
SOURCE_FILES = {"test": "ReXRank_IUXray_test.json", "val": "ReXRank_IUXray_valid.json"}
EXPECTED_STUDIES = {"test": 590, "val": 296}
ROOT_SUBDIRS = ("iu_xray",)
IMAGE_DIR = "images"

HOW_TO_GET = (
    "The ReXrank IU X-Ray files ReXRank_IUXray_test.json and ReXRank_IUXray_valid.json are in "
    "github.com/rajpurkarlab/ReXrank under data/iu_xray (MIT licence; the text is Open-i's). Put them in a "
    "folder DIR (or DIR/iu_xray), with R2Gen's images/<id>/<k>.png beside them if an image model is to run, "
    "and pass --data-root DIR or set BENCH_DATA_ROOT=DIR."
)


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
        rows = committed_manifest(NAME).rows(split)
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
            note_missing(report, exc)
            return report
        readable = True
        for split in SPLITS:
            try:
                path, rows, _, problems = self._texts(split)
            except DataError as exc:
                note_missing(report, exc)
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
        return identity_block(committed_manifest(NAME), split, committed_manifest(NAME).rows(split), name=self.name,
                              reference_policy=self.reference_policy, hash_key=policy.HASH_KEYS[self.reference_policy])


class IUXrayRexrankFindings(IUXrayRexrank):
    """The same studies scored against ReXrank's findings section alone (its findings-only track)."""

    name: ClassVar[str] = FINDINGS_NAME
    description: ClassVar[str] = "IU X-Ray as ReXrank scores it (590 test / 296 val), findings only"
    reference_policy: ClassVar[str] = policy.FINDINGS
