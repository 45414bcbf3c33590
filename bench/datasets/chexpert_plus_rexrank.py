"""CheXpert Plus as ReXrank evaluates it: the 200 studies (234 images) of CheXpert's ``valid/``.

CheXpert Plus (Stanford AIMI, research-use agreement) is not redistributable: the committed
manifest (data_manifests/chexpert_plus/rexrank) holds policies and ReXrank's counts only, and
``prepare_chexpert_plus_rexrank`` builds the study list and references from the user's copy
into ``<data root>/chexpert_plus/rexrank``.

Input: the CheXpert Plus main table ``df_chexpert_plus_240401.csv`` (one row per image;
columns ``path_to_image`` like ``valid/patient64541/study1/view1_frontal.jpg``,
``section_findings``, ``section_impression``; ``frontal_lateral`` is used when present).
It is read with pandas defaults, as ReXrank's tooling does, so an empty cell is a missing
section. Images are looked up as ReXrank names them: ``PNG/<path_to_image with .png>``.

Selection: every image whose path starts with ``valid/``, grouped by its study folder; study
id ``patient<N>_study<M>`` (ReXrank's key). Reference: ``findings_impression`` of
``bench.datasets.rexrank_policy`` from the study's sections (62 of ReXrank's 200 have
findings, so most read "Findings: None Impression: …"); the rows of one study must agree.
Frontal: the first image whose ``frontal_lateral`` is Frontal (else the first image).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from rrg_bench.api.preparer import PrepareRequest, Preparer
from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.datasets.mimic_cxr import find_file
from rrg_bench.datasets.mimic_cxr_rexrank import refuse_repository_target
from rrg_bench.errors import DataError
from rrg_bench.manifests import (
    Manifest,
    load_manifest,
    load_manifest_dir,
    mismatch_error,
    sha256_file,
    sha256_text,
    write_manifest_dir,
)
from rrg_bench.api.types import Study

NAME = "chexpert_plus/rexrank"
SPLIT = "valid"
MAIN_TABLE = "df_chexpert_plus_240401.csv"
REQUIRED_COLUMNS = ("path_to_image", "section_findings", "section_impression")
PREPARED_SUBDIR = Path("chexpert_plus") / "rexrank"
IMAGE_DIR = "PNG"

HOW_TO_GET = (
    "CheXpert Plus comes from Stanford AIMI (stanfordaimi.azurewebsites.net, research-use agreement): download "
    "df_chexpert_plus_240401.csv (and the PNG images if an image model is to run), then build ReXrank's set with "
    "bench.datasets.chexpert_plus_rexrank.prepare_chexpert_plus_rexrank(CHEXPERT_PLUS_DIR, "
    "DATA_ROOT/chexpert_plus/rexrank) and pass --data-root DATA_ROOT or set BENCH_DATA_ROOT."
)


@functools.lru_cache(maxsize=1)
def committed_manifest() -> Manifest:
    return load_manifest(NAME)


@dataclass
class CheXpertPlusPrepareReport:
    out_dir: Path
    manifest_path: Path
    official: bool
    studies: int
    images: int
    count_mismatches: list[str]

    def summary(self) -> str:
        lines = [f"prepared {NAME} in {self.out_dir} (official: {self.official})",
                 f"{SPLIT}: {self.studies:,} studies ({self.images:,} images)"]
        return "\n".join(lines + [f"counts differ from ReXrank's: {m}" for m in self.count_mismatches])


def study_id_of(path_to_image: str) -> str:
    """``valid/patient64541/study1/view1_frontal.jpg`` -> ``patient64541_study1`` (ReXrank's key)."""
    parts = PurePosixPath(path_to_image).parts
    if len(parts) < 4 or not parts[1].startswith("patient") or not parts[2].startswith("study"):
        raise DataError(f"{MAIN_TABLE}: path_to_image {path_to_image!r} is not <split>/patient<N>/study<M>/<view>")
    return f"{parts[1]}_{parts[2]}"


def _read_table(path: Path) -> Any:
    import pandas as pd

    try:
        table = pd.read_csv(path, low_memory=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot be read as a CSV ({type(exc).__name__}: {exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (is this CheXpert Plus' {MAIN_TABLE}?)")
    return table


def prepare_chexpert_plus_rexrank(source_dir: Path, out_dir: Path, *, check_counts: bool = True
                                  ) -> CheXpertPlusPrepareReport:
    """Build the local ``chexpert_plus/rexrank`` study list and references from the user's copy.

    ``source_dir`` holds (at any depth up to 5) ``df_chexpert_plus_240401.csv``. Raises
    ``DataError`` for missing/malformed input, a study whose rows disagree on its sections, or
    (with ``check_counts``) counts other than ReXrank's 200 studies / 234 images.
    """
    source_dir, out_dir = Path(source_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    refuse_repository_target(out_dir)
    table_path = find_file(source_dir, MAIN_TABLE) if source_dir.is_dir() else None
    if table_path is None:
        raise DataError(f"{MAIN_TABLE} not found under {source_dir}. {HOW_TO_GET}")
    table = _read_table(table_path)
    studies: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(table.itertuples(index=False), start=2):
        path = str(row.path_to_image)
        if not path.startswith(f"{SPLIT}/"):
            continue
        sid = study_id_of(path)
        findings, impression = row.section_findings, row.section_impression
        reference = policy.ground_truth(findings, impression)
        image = f"{IMAGE_DIR}/{PurePosixPath(path).with_suffix('.png')}"
        view = str(getattr(row, "frontal_lateral", "") or "")
        study = studies.setdefault(sid, {"reference": reference, "images": [], "views": [], "line": n})
        if study["reference"] != reference:
            raise DataError(f"{table_path}:{n}: study {sid} has other findings/impression sections than on line "
                            f"{study['line']}; expected one report per study")
        study["images"].append(image)
        study["views"].append(view)
    rows = []
    for sid, study in studies.items():
        frontal = next((img for img, v in zip(study["images"], study["views"]) if v == "Frontal"), study["images"][0])
        rows.append({"study_id": sid, "images": study["images"], "views": study["views"], "frontal": frontal,
                     "reference_sha256": sha256_text(study["reference"]), "reference": study["reference"]})
    expected = committed_manifest().split("test")
    n_images = sum(len(r["images"]) for r in rows)
    mismatches = [f"{got:,} {what} (ReXrank: {want:,})"
                  for what, got, want in (("studies", len(rows), expected.studies), ("images", n_images, expected.images))
                  if got != want]
    if mismatches and check_counts:
        raise DataError(f"{table_path}: CheXpert's valid/ split here differs from ReXrank's set: {'; '.join(mismatches)}. "
                        f"Use the unmodified {MAIN_TABLE}, or prepare with count checks off (marked non-official)")
    committed = committed_manifest()
    header = {
        "name": NAME,
        "version": committed.version,
        "description": "Locally prepared from the user's CheXpert Plus copy; never commit or share this folder.",
        "official": not mismatches,
        "committed_manifest_sha256": committed.sha256,
        "reference_policy": committed.reference_policy,
        "view_policy": committed.view_policy,
        "sources": [{"file": MAIN_TABLE, "sha256": sha256_file(table_path)}],
        "image_root": str(table_path.parent),
        "count_check": "passed" if not mismatches else "failed (check_counts=False): " + "; ".join(mismatches),
    }
    manifest_path = write_manifest_dir(out_dir, header, {"test": rows})
    return CheXpertPlusPrepareReport(out_dir, manifest_path, not mismatches, len(rows), n_images, mismatches)


class CheXpertPlusRexrank(Dataset):
    """ReXrank's CheXpert Plus set (CheXpert valid/, 200 studies), "Findings: … Impression: …"."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "CheXpert Plus valid/ as ReXrank scores it (200 studies), prepared locally"
    splits: ClassVar[tuple[str, ...]] = ("test",)
    reference_policy: ClassVar[str] = policy.FINDINGS_IMPRESSION

    def root(self) -> Path:
        if self.data_root is None:
            raise DataError(f"{NAME}: no data root given. {HOW_TO_GET}")
        for candidate in (self.data_root / PREPARED_SUBDIR, self.data_root):
            if (candidate / "manifest.yaml").is_file() and load_manifest_dir(candidate).name == NAME:
                return candidate
        raise DataError(f"{NAME}: not prepared: no {NAME} manifest.yaml in {self.data_root / PREPARED_SUBDIR}. "
                        f"{HOW_TO_GET}")

    @functools.cached_property
    def prepared(self) -> Manifest:
        manifest = load_manifest_dir(self.root())
        committed = committed_manifest()
        if manifest.version != committed.version or manifest.data.get("committed_manifest_sha256") != committed.sha256:
            raise DataError(f"{self.root()} was prepared for another version of {NAME}; prepare it again")
        return manifest

    def _check_split(self, split: str) -> None:
        if split != "test":
            raise DataError(f"{NAME} has only the split 'test' (CheXpert's valid/ folder); got {split!r}")

    def _problems(self) -> list[str]:
        return [f"{row['study_id']}: reference sha256 differs" for row in self.prepared.rows("test")
                if sha256_text(str(row.get("reference", ""))) != row["reference_sha256"]]

    def studies(self, split: str) -> list[Study]:
        self._check_split(split)
        rows = self.prepared.rows("test")
        problems = self._problems()
        if problems:
            raise mismatch_error(NAME, split, len(rows), problems, f"prepared data in {self.root()}",
                                 "Prepare the data again")
        image_root = Path(self.prepared.data["image_root"])
        return [Study(study_id=row["study_id"], split=split, reference=row["reference"],
                      reference_sha256=row["reference_sha256"],
                      image_paths=tuple(image_root / p for p in row["images"]),
                      frontal_image=image_root / row["frontal"],
                      meta={"views": tuple(row["views"]), "official": bool(self.prepared.data.get("official"))})
                for row in rows]

    def verify(self) -> VerifyReport:
        report = VerifyReport(dataset=NAME, data_root=self.data_root, ok=False, how_to_get=HOW_TO_GET)
        try:
            rows = self.prepared.rows("test")
        except DataError as exc:
            report.missing.append(str(exc))
            return report
        if not self.prepared.data.get("official"):
            report.mismatched.append(f"differs from ReXrank's set: {self.prepared.data.get('count_check')}")
        problems = self._problems()
        report.mismatched += [f"test/{p}" for p in problems]
        if not problems:
            report.present.append(f"test: {len(rows)} references match the prepared manifest")
        image_root = Path(self.prepared.data["image_root"])
        absent = sum(not (image_root / p).is_file() for r in rows for p in r["images"])
        n_images = sum(len(r["images"]) for r in rows)
        (report.present if absent == 0 else report.missing).append(
            f"test: images {n_images - absent} of {n_images} under {image_root / IMAGE_DIR}")
        report.ok = not report.mismatched
        return report

    def identity(self, split: str) -> dict[str, Any]:
        self._check_split(split)
        committed = committed_manifest()
        block: dict[str, Any] = {
            "name": NAME, "manifest_version": committed.version, "manifest_sha256": committed.sha256,
            "split": split, "reference_policy": self.reference_policy, "n_expected": None,
            "study_ids_sha256": None, "references_sha256": None, "prepared_manifest_sha256": None, "official": None,
        }
        try:
            prepared = self.prepared
        except DataError:
            return block
        block.update(policy.identity(prepared, prepared.rows("test"), name=NAME, split=split,
                                     policy=self.reference_policy))
        block.update({"manifest_sha256": committed.sha256, "prepared_manifest_sha256": prepared.sha256,
                      "official": bool(prepared.data.get("official"))})
        return block


class CheXpertPlusRexrankPreparer(Preparer):
    """Build ``chexpert_plus/rexrank`` (CheXpert Plus valid as ReXrank uses it) from the user's copy."""

    subdir = PREPARED_SUBDIR.as_posix()

    def prepare(self, request: PrepareRequest) -> CheXpertPlusPrepareReport:
        return prepare_chexpert_plus_rexrank(request.source, request.output_dir, check_counts=request.check_counts)
