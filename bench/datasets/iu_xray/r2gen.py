"""IU X-Ray with R2Gen's split (2,069 / 296 / 590 studies), findings as reference.

The committed manifest holds ids, image paths, the frontal image and the sha256 of every
reference — no report text. The text comes from the user's copy: R2Gen's
``annotation.json`` or, when that is absent, the Open-i/Kaggle ``indiana_reports.csv``
(its ``findings`` column is byte-identical to R2Gen's ``report`` for all 2,955 studies).
Which image is frontal is decided by ``openi.choose_frontal`` when the manifest is built
(``build.build_r2gen_manifest``); the card explains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.api.types import Study
from rrg_bench.datasets.base import committed_manifest, note_missing
from rrg_bench.datasets.iu_xray.openi import ANNOTATION, REPORTS_CSV, read_annotation, read_openi_findings
from rrg_bench.errors import DataError
from rrg_bench.manifests import find_dataset_root, mismatch_error, sha256_text

NAME = "iu_xray/r2gen"
SPLITS = ("train", "val", "test")
EXPECTED_STUDIES = {"train": 2069, "val": 296, "test": 590}

#: where a data root may keep the IU files: itself, or a sub-folder named like this
ROOT_SUBDIRS = ("iu_xray",)

HOW_TO_GET = (
    "IU X-Ray text comes from R2Gen's annotation.json (the iu_xray archive linked from "
    "github.com/cuhksz-nlp/R2Gen; it also holds images/<id>/<k>.png) or from the Open-i/Kaggle CSVs "
    "indiana_reports.csv + indiana_projections.csv (kaggle.com/datasets/raddar/chest-xrays-indiana-university). "
    "Put them in a folder DIR (or DIR/iu_xray) and pass --data-root DIR or set BENCH_DATA_ROOT=DIR. "
    "Images are optional for text-only baselines."
)


@dataclass
class _References:
    """The user's reference text, whichever file it came from."""

    source: Path
    by_id: dict[str, tuple[str | None, str]]  # id -> (split in the source file or None, text)


class IUXrayR2Gen(Dataset):
    """R2Gen's IU X-Ray split; references from the user's annotation.json or Open-i CSV."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = ("IU X-Ray, R2Gen split 2,069/296/590, findings "
                                  "(text from your annotation.json or Open-i CSV)")
    splits: ClassVar[tuple[str, ...]] = SPLITS
    reference_policy: ClassVar[str] = "findings"

    def __init__(self, data_root: Path | str | None = None) -> None:
        super().__init__(data_root)
        self._refs: _References | None = None

    # -- locating the data

    def root(self) -> Path:
        """The folder holding annotation.json or indiana_reports.csv (and images/)."""
        if self.data_root is None:
            raise DataError(f"{NAME}: no data root given. {HOW_TO_GET}")
        if not self.data_root.is_dir():
            raise DataError(f"{NAME}: data root {self.data_root} does not exist. {HOW_TO_GET}")
        found = find_dataset_root(self.data_root, ROOT_SUBDIRS, (ANNOTATION, REPORTS_CSV))
        if found is None:
            raise DataError(
                f"{NAME}: neither {ANNOTATION} nor {REPORTS_CSV} in {self.data_root} or "
                f"{self.data_root / ROOT_SUBDIRS[0]}. {HOW_TO_GET}"
            )
        return found

    def references(self) -> _References:
        if self._refs is None:
            root = self.root()
            if (root / ANNOTATION).is_file():
                by_id: dict[str, tuple[str | None, str]] = dict(read_annotation(root / ANNOTATION))
                self._refs = _References(root / ANNOTATION, by_id)
            else:
                findings = read_openi_findings(root / REPORTS_CSV)
                rows = [r for split in SPLITS for r in committed_manifest(NAME).rows(split)]
                by_id = {r["study_id"]: (None, findings[r["uid"]]) for r in rows if r["uid"] in findings}
                self._refs = _References(root / REPORTS_CSV, by_id)
        return self._refs

    # -- checking

    def _problems(self, split: str) -> list[str]:
        rows = committed_manifest(NAME).rows(split)
        refs = self.references()
        problems: list[str] = []
        for row in rows:
            sid = row["study_id"]
            if sid not in refs.by_id:
                problems.append(f"{sid}: missing from {refs.source.name}")
                continue
            source_split, text = refs.by_id[sid]
            if source_split is not None and source_split != split:
                problems.append(f"{sid}: in split {source_split!r} of {refs.source.name}, manifest says {split!r}")
            elif sha256_text(text) != row["reference_sha256"]:
                problems.append(f"{sid}: reference sha256 differs")
        expected = {r["study_id"] for r in rows}
        extra = sorted(sid for sid, (s, _) in refs.by_id.items() if s == split and sid not in expected)
        problems += [f"{sid}: in {refs.source.name} {split} but not in the manifest" for sid in extra]
        return problems

    def _check(self, split: str) -> list[dict[str, Any]]:
        rows = committed_manifest(NAME).rows(split)
        if len(rows) != EXPECTED_STUDIES[split]:
            raise DataError(
                f"{NAME}: manifest {split} lists {len(rows)} studies, R2Gen's split has {EXPECTED_STUDIES[split]}")
        problems = self._problems(split)
        if problems:
            refs = self.references()
            raise mismatch_error(
                NAME, split, len(rows), problems, f"text from {refs.source}",
                hint="Use R2Gen's original annotation.json (sha256 in the manifest card) or the Kaggle "
                     "indiana_reports.csv",
            )
        return rows

    # -- Dataset API

    def studies(self, split: str) -> list[Study]:
        rows = self._check(split)
        root = self.root()
        refs = self.references()
        out = []
        for row in rows:
            text = refs.by_id[row["study_id"]][1]
            out.append(Study(
                study_id=row["study_id"],
                split=split,
                reference=text,
                reference_sha256=row["reference_sha256"],
                image_paths=tuple(root / p for p in row["images"]),
                frontal_image=root / row["frontal"],
                meta={"uid": row["uid"], "views": tuple(row["views"]), "frontal_source": row["frontal_source"]},
            ))
        return out

    def verify(self) -> VerifyReport:
        report = VerifyReport(dataset=NAME, data_root=self.data_root, ok=False, how_to_get=HOW_TO_GET)
        try:
            root = self.root()
            refs = self.references()
        except DataError as exc:
            note_missing(report, exc)
            return report
        report.present.append(f"reference text: {refs.source}")
        n_images = n_present = 0
        for split in SPLITS:
            rows = committed_manifest(NAME).rows(split)
            problems = self._problems(split)
            if problems:
                report.mismatched += [f"{split}/{p}" for p in problems]
            else:
                report.present.append(f"{split}: {len(rows)} references match the manifest")
            for row in rows:
                n_images += len(row["images"])
                n_present += sum((root / p).is_file() for p in row["images"])
        images_line = f"images: {n_present} of {n_images} under {root / 'images'}"
        if n_present == n_images:
            report.present.append(images_line)
        else:
            report.missing.append(
                images_line + " (text-only generators work without them; image generators need R2Gen's iu_xray images)"
            )
        report.ok = not report.mismatched
        return report

    def identity(self, split: str) -> dict[str, Any]:
        return committed_manifest(NAME).identity(split)
