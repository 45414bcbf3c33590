"""CheXpert Plus as ReXrank evaluates it: the 200 studies (234 images) of CheXpert's ``valid/``.

CheXpert Plus (Stanford AIMI, research-use agreement) is not redistributable: the committed
manifest (data_manifests/chexpert_plus/rexrank) holds policies and ReXrank's counts only, and
``prepare_chexpert_plus_rexrank`` (``bench data prepare chexpert_plus/rexrank``) builds the study
list and references from the user's copy into ``<data root>/chexpert_plus/rexrank``.

Input: the CheXpert Plus main table ``df_chexpert_plus_240401.csv`` (one row per image;
columns ``path_to_image`` like ``valid/patient64541/study1/view1_frontal.jpg``,
``section_findings``, ``section_impression``; ``frontal_lateral`` is used when present).
It is read with pandas defaults, as ReXrank's tooling does, so an empty cell is a missing
section. Images are looked up as ReXrank names them: ``PNG/<path_to_image with .png>``.

Selection: every image whose path starts with ``valid/``, grouped by its study folder; study
id ``patient<N>_study<M>`` (ReXrank's key). Reference: ``findings_impression`` of
``rrg_bench.datasets.rexrank_policy`` from the study's sections (62 of ReXrank's 200 have
findings, so most read "Findings: None Impression: …"); the rows of one study must agree.
Frontal: the first image whose ``frontal_lateral`` is Frontal (else the first image).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from rrg_bench.api.preparer import Preparer, PrepareRequest
from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.datasets.base import committed_manifest
from rrg_bench.datasets.prepared import (
    PreparedDataset,
    count_check,
    count_mismatches,
    find_file,
    prepared_header,
    refuse_repository_target,
    split_counts,
)
from rrg_bench.errors import DataError
from rrg_bench.manifests import sha256_file, sha256_text, write_manifest_dir

NAME = "chexpert_plus/rexrank"
SPLIT = "valid"
MAIN_TABLE = "df_chexpert_plus_240401.csv"
REQUIRED_COLUMNS = ("path_to_image", "section_findings", "section_impression")
PREPARED_SUBDIR = Path("chexpert_plus") / "rexrank"
IMAGE_DIR = "PNG"

HOW_TO_GET = (
    "CheXpert Plus comes from Stanford AIMI (stanfordaimi.azurewebsites.net, research-use agreement): download "
    "df_chexpert_plus_240401.csv (and the PNG images if an image model is to run), then run "
    "`bench data prepare chexpert_plus/rexrank --source CHEXPERT_PLUS_DIR --data-root DATA_ROOT`, which writes the "
    "prepared folder into your data root. Point the harness at the data root with --data-root DATA_ROOT or "
    "BENCH_DATA_ROOT=DATA_ROOT."
)


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


def _rows(table: Any, table_path: Path) -> list[dict[str, Any]]:
    """One row per study of ``valid/``, in table order; its images in table order too."""
    studies: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(table.itertuples(index=False), start=2):
        path = str(row.path_to_image)
        if not path.startswith(f"{SPLIT}/"):
            continue
        sid = study_id_of(path)
        reference = policy.ground_truth(row.section_findings, row.section_impression)
        study = studies.setdefault(sid, {"reference": reference, "images": [], "views": [], "line": n})
        if study["reference"] != reference:
            raise DataError(f"{table_path}:{n}: study {sid} has other findings/impression sections than on line "
                            f"{study['line']}; expected one report per study")
        study["images"].append(f"{IMAGE_DIR}/{PurePosixPath(path).with_suffix('.png')}")
        study["views"].append(str(getattr(row, "frontal_lateral", "") or ""))
    rows = []
    for sid, study in studies.items():
        frontal = next((img for img, v in zip(study["images"], study["views"]) if v == "Frontal"), study["images"][0])
        rows.append({"study_id": sid, "images": study["images"], "views": study["views"], "frontal": frontal,
                     "reference_sha256": sha256_text(study["reference"]), "reference": study["reference"]})
    return rows


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
    rows = _rows(_read_table(table_path), table_path)
    committed = committed_manifest(NAME)
    n_images = sum(len(r["images"]) for r in rows)
    mismatches = count_mismatches({"studies": len(rows), "images": n_images},
                                  split_counts(committed.split("test")), "ReXrank: ")
    if mismatches and check_counts:
        raise DataError(f"{table_path}: CheXpert's valid/ split here differs from ReXrank's set: "
                        f"{'; '.join(mismatches)}. Use the unmodified {MAIN_TABLE}, or prepare with count checks off "
                        f"(marked non-official)")
    description = "Locally prepared from the user's CheXpert Plus copy; never commit or share this folder."
    header = {
        **prepared_header(committed, description, official=not mismatches),
        "view_policy": committed.view_policy,
        "sources": [{"file": MAIN_TABLE, "sha256": sha256_file(table_path)}],
        "image_root": str(table_path.parent),
        "count_check": count_check(mismatches),
    }
    manifest_path = write_manifest_dir(out_dir, header, {"test": rows})
    return CheXpertPlusPrepareReport(out_dir, manifest_path, not mismatches, len(rows), n_images, mismatches)


class CheXpertPlusRexrank(PreparedDataset):
    """ReXrank's CheXpert Plus set (CheXpert valid/, 200 studies), "Findings: … Impression: …"."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "CheXpert Plus valid/ as ReXrank scores it (200 studies), prepared locally"
    splits: ClassVar[tuple[str, ...]] = ("test",)
    reference_policy: ClassVar[str] = policy.FINDINGS_IMPRESSION
    manifest_name: ClassVar[str] = NAME
    prepared_subdir: ClassVar[Path] = PREPARED_SUBDIR
    how_to_get: ClassVar[str] = HOW_TO_GET
    prepare_command: ClassVar[str] = NAME
    split_note: ClassVar[str] = " (CheXpert's valid/ folder)"

    def _images_line(self, split: str, rows: list[dict[str, Any]], image_root: Path) -> tuple[str, bool] | None:
        absent = sum(not (image_root / p).is_file() for r in rows for p in r["images"])
        n_images = sum(len(r["images"]) for r in rows)
        return f"{split}: images {n_images - absent} of {n_images} under {image_root / IMAGE_DIR}", absent == 0


class CheXpertPlusRexrankPreparer(Preparer):
    """Build ``chexpert_plus/rexrank`` (CheXpert Plus valid as ReXrank uses it) from the user's copy."""

    subdir = PREPARED_SUBDIR.as_posix()

    def prepare(self, request: PrepareRequest) -> CheXpertPlusPrepareReport:
        return prepare_chexpert_plus_rexrank(request.source, request.output_dir, check_counts=request.check_counts)
