"""``demo``: a small synthetic chest X-ray dataset we wrote ourselves, shipped in the wheel.

Why it exists: the first ``bench run`` on a fresh machine must work with no download and no
data-use agreement. 60 studies (36 train / 12 val / 12 test), findings-style reports
composed from templates, and two drawn grayscale PNGs per study (frontal, lateral) whose
shapes follow the report (``drawing``). ``build.build_demo`` reproduces the shipped files
byte for byte (a test checks it).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.api.types import Study
from rrg_bench.datasets.base import committed_manifest, note_missing
from rrg_bench.errors import DataError
from rrg_bench.manifests import find_dataset_root, mismatch_error, sha256_bytes, sha256_text

NAME = "demo"
SPLITS = ("train", "val", "test")
SPLIT_SIZES = {"train": 36, "val": 12, "test": 12}
REPORTS_FILE = "reports.jsonl"
#: the shipped data root, relative to the manifest folder
SHIPPED_DATA = "data"

HOW_TO_GET = (
    "The demo data ships inside rrg-bench (data_manifests/demo/data). If it is missing or modified, "
    "reinstall rrg-bench; a data root containing demo/ or reports.jsonl + images/ overrides it."
)


def shipped_dir() -> Path:
    """The shipped demo folder (manifest + data) as a real path."""
    return Path(str(resources.files("rrg_bench.data_manifests").joinpath("demo")))


class DemoDataset(Dataset):
    """The shipped synthetic dataset; works with no data root at all."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "synthetic demo: 36/12/12 template reports with drawn images (ships with rrg-bench)"
    splits: ClassVar[tuple[str, ...]] = SPLITS
    reference_policy: ClassVar[str] = "findings"

    def root(self) -> Path:
        """``<data root>/demo`` or a data root that is itself a demo copy; else the shipped copy."""
        found = find_dataset_root(self.data_root, ("demo", f"demo/{SHIPPED_DATA}"), (REPORTS_FILE,))
        return found if found is not None else shipped_dir() / SHIPPED_DATA

    @functools.cached_property
    def _texts(self) -> dict[str, str]:
        path = self.root() / REPORTS_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{NAME}: cannot read {path} ({type(exc).__name__}). {HOW_TO_GET}") from None
        texts: dict[str, str] = {}
        for lineno, line in enumerate(lines, start=1):
            try:
                obj = json.loads(line)
                texts[obj["study_id"]] = obj["findings"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path}:{lineno}: expected {{\"study_id\": ..., \"findings\": ...}}") from None
        return texts

    def _problems(self, split: str) -> list[str]:
        problems = []
        for row in committed_manifest(NAME).rows(split):
            text = self._texts.get(row["study_id"])
            if text is None:
                problems.append(f"{row['study_id']}: missing from {REPORTS_FILE}")
            elif sha256_text(text) != row["reference_sha256"]:
                problems.append(f"{row['study_id']}: reference sha256 differs")
        return problems

    def studies(self, split: str) -> list[Study]:
        rows = committed_manifest(NAME).rows(split)
        problems = self._problems(split)
        if problems:
            where = f"text from {self.root() / REPORTS_FILE}"
            raise mismatch_error(NAME, split, len(rows), problems, where, HOW_TO_GET)
        root = self.root()
        return [
            Study(
                study_id=row["study_id"],
                split=split,
                reference=self._texts[row["study_id"]],
                reference_sha256=row["reference_sha256"],
                image_paths=tuple(root / p for p in row["images"]),
                frontal_image=root / row["frontal"],
                meta={"labels": tuple(row["labels"])},
            )
            for row in rows
        ]

    def verify(self) -> VerifyReport:
        root = self.root()
        report = VerifyReport(dataset=NAME, data_root=root, ok=False, how_to_get=HOW_TO_GET)
        try:
            self._texts  # noqa: B018 (reads and parses the reference file, or raises)
        except DataError as exc:
            note_missing(report, exc)
            return report
        report.present.append(f"reference text: {root / REPORTS_FILE}")
        for split in SPLITS:
            rows = committed_manifest(NAME).rows(split)
            problems = self._problems(split)
            report.mismatched += [f"{split}/{p}" for p in problems]
            absent = [p for row in rows for p in row["images"] if not (root / p).is_file()]
            changed = [
                p for row in rows for p, digest in zip(row["images"], row["image_sha256"])
                if (root / p).is_file() and sha256_bytes((root / p).read_bytes()) != digest
            ]
            report.mismatched += [f"{split}/{p}: image sha256 differs" for p in changed]
            report.missing += [f"{split}/{p}: image missing" for p in absent]
            if not problems:
                report.present.append(f"{split}: {len(rows)} references match the manifest")
        report.ok = not report.mismatched and not report.missing
        return report

    def identity(self, split: str) -> dict[str, Any]:
        return committed_manifest(NAME).identity(split)
