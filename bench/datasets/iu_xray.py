"""IU X-Ray with R2Gen's split (2,069 / 296 / 590 studies), findings as reference.

The committed manifest holds ids, image paths, the frontal image and the sha256 of every
reference — no report text. The text comes from the user's copy: R2Gen's
``annotation.json`` or, when that is absent, the Open-i/Kaggle ``indiana_reports.csv``
(its ``findings`` column is byte-identical to R2Gen's ``report`` for all 2,955 studies).

Image index is not view. R2Gen's folder ``images/<id>/`` holds every image of the report,
numbered in sorted Open-i file-name order, and ``annotation.json`` uses ``0.png`` and
``1.png``. The frontal image is the first of those two whose Open-i projection
(``indiana_projections.csv``) is Frontal; if neither is, ``1.png`` (the convention of
ReXrank's ``key_image_path``). The card (data_manifests/iu_xray/r2gen/README.md) explains
how the order was derived and how it was checked against ReXrank's key images.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.errors import DataError
from rrg_bench.manifests import (
    Manifest,
    find_dataset_root,
    load_manifest,
    mismatch_error,
    name_some,
    sha256_file,
    sha256_text,
    write_manifest_dir,
)
from rrg_bench.api.types import Study

NAME = "iu_xray/r2gen"
SPLITS = ("train", "val", "test")
EXPECTED_STUDIES = {"train": 2069, "val": 296, "test": 590}

ANNOTATION = "annotation.json"
REPORTS_CSV = "indiana_reports.csv"
PROJECTIONS_CSV = "indiana_projections.csv"
REXRANK_FILES = {"test": "ReXRank_IUXray_test.json", "val": "ReXRank_IUXray_valid.json"}

#: where a data root may keep the IU files: itself, or a sub-folder named like this
ROOT_SUBDIRS = ("iu_xray",)

HOW_TO_GET = (
    "IU X-Ray text comes from R2Gen's annotation.json (the iu_xray archive linked from "
    "github.com/cuhksz-nlp/R2Gen; it also holds images/<id>/<k>.png) or from the Open-i/Kaggle CSVs "
    "indiana_reports.csv + indiana_projections.csv (kaggle.com/datasets/raddar/chest-xrays-indiana-university). "
    "Put them in a folder DIR (or DIR/iu_xray) and pass --data-root DIR or set BENCH_DATA_ROOT=DIR. "
    "Images are optional for text-only baselines."
)

_UID = re.compile(r"^CXR(\d+)_")

#: frontal_source values (see the card)
FROM_PROJECTION = "projection"
FROM_INFERRED_ORDER = "projection_inferred_order"
NO_FRONTAL_IN_PAIR = "no_frontal_in_pair"


def uid_of(study_id: str) -> int:
    """Open-i/Kaggle ``uid`` of an R2Gen id: ``CXR2384_IM-0942`` -> 2384 (``CXR1_1_IM-0001`` -> 1)."""
    match = _UID.match(study_id)
    if not match:
        raise DataError(f"{study_id!r} is not an IU X-Ray R2Gen id (expected CXR<uid>_IM-...)")
    return int(match.group(1))


# ----------------------------------------------------------------------------- image order


def openi_png_name(kaggle_filename: str) -> str:
    """Open-i PNG name of a Kaggle ``images_normalized`` file (which keeps the DICOM name).

    ``2384_IM-0942-1001.dcm.png`` -> ``CXR2384_IM-0942-1001.png``; report 1 is
    ``CXR1_1_IM-0001-…`` in Open-i. A DICOM named ``…-0001-0001`` is inferred to be the
    Open-i PNG ``…-0001`` (ReXrank's view lists miss exactly these files; see the card).
    """
    stem = kaggle_filename.removesuffix(".png").removesuffix(".dcm")
    uid, _, rest = stem.partition("_")
    if uid == "1":
        stem = f"1_1_{rest}"
    if stem.endswith("-0001-0001"):
        stem = stem[: -len("-0001")]
    return f"CXR{stem}.png"


def _plain_png_name(kaggle_filename: str) -> str:
    """The same without the ``-0001-0001`` inference: the alternative order it is checked against."""
    stem = kaggle_filename.removesuffix(".png").removesuffix(".dcm")
    return f"CXR{stem}.png"


def r2gen_image_order(kaggle_files: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``[(open-i name, projection)]`` of a report's images in R2Gen index order (k.png = item k)."""
    return sorted((openi_png_name(f), view) for f, view in kaggle_files)


@dataclass(frozen=True)
class FrontalChoice:
    index: int  # 0 or 1: which of R2Gen's two images
    source: str  # FROM_PROJECTION | FROM_INFERRED_ORDER | NO_FRONTAL_IN_PAIR
    views: tuple[str, str]  # Open-i projection of 0.png and 1.png


def _first_frontal(views: Sequence[str]) -> int | None:
    return next((k for k in range(2) if views[k] == "Frontal"), None)


def choose_frontal(kaggle_files: Sequence[tuple[str, str]]) -> FrontalChoice:
    """Which of ``0.png``/``1.png`` is the frontal view, and how that was decided."""
    if len(kaggle_files) < 2:
        raise DataError(f"an R2Gen study needs at least two images, got {len(kaggle_files)}")
    views = tuple(view for _, view in r2gen_image_order(kaggle_files)[:2])
    plain = [view for _, view in sorted((_plain_png_name(f), v) for f, v in kaggle_files)[:2]]
    index = _first_frontal(views)
    if index is None:
        return FrontalChoice(1, NO_FRONTAL_IN_PAIR, views)  # type: ignore[arg-type]
    source = FROM_PROJECTION if _first_frontal(plain) == index else FROM_INFERRED_ORDER
    return FrontalChoice(index, source, views)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- source files


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def read_annotation(path: Path) -> dict[str, tuple[str, str]]:
    """R2Gen ``annotation.json`` -> ``{id: (split, report)}``."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object with 'train', 'val' and 'test' lists")
    out: dict[str, tuple[str, str]] = {}
    for split, entries in data.items():
        if not isinstance(entries, list):
            raise DataError(f"{path}: {split!r} is not a list of studies (is this R2Gen's iu_xray annotation.json?)")
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not isinstance(entry.get("report"), str):
                raise DataError(f"{path}: {split}[{n}] lacks a string 'id' and 'report'")
            if entry["id"] in out:
                raise DataError(f"{path}: study {entry['id']} appears twice ({out[entry['id']][0]} and {split})")
            out[entry["id"]] = (str(split), entry["report"])
    return out


def _read_csv(path: Path, needed: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found {reader.fieldnames})")
            return list(reader)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None


def read_openi_findings(path: Path) -> dict[int, str]:
    """Kaggle/Open-i ``indiana_reports.csv`` -> ``{uid: findings}`` (text exactly as stored)."""
    out: dict[int, str] = {}
    for n, row in enumerate(_read_csv(path, ("uid", "findings")), start=2):
        try:
            uid = int(row["uid"])
        except ValueError:
            raise DataError(f"{path}:{n}: uid {row['uid']!r} is not an integer") from None
        out.setdefault(uid, row["findings"])
    return out


def read_projections(path: Path) -> dict[int, list[tuple[str, str]]]:
    """``indiana_projections.csv`` -> ``{uid: [(filename, projection)]}``."""
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for n, row in enumerate(_read_csv(path, ("uid", "filename", "projection")), start=2):
        try:
            out[int(row["uid"])].append((row["filename"], row["projection"]))
        except ValueError:
            raise DataError(f"{path}:{n}: uid {row['uid']!r} is not an integer") from None
    return dict(out)


# ----------------------------------------------------------------------------- manifest builder


def _rexrank_key_index(entry: Mapping[str, Any]) -> int:
    return int(Path(entry["key_image_path"]).stem)


def build_manifest(source_dir: Path, out_dir: Path) -> Path:
    """Regenerate the committed manifest from the five IU source files in ``source_dir``.

    Maintainer tool: ``build_manifest(Path("../shared/data/iu_xray"), Path("data_manifests/iu_xray/r2gen"))``.
    Fails if any test/val frontal differs from ReXrank's ``key_image_path``.
    """
    source_dir = Path(source_dir)
    paths = {n: source_dir / n for n in (ANNOTATION, REPORTS_CSV, PROJECTIONS_CSV, *REXRANK_FILES.values())}
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        raise DataError(f"build_manifest needs {', '.join(absent)}")
    annotation = _read_json(paths[ANNOTATION])
    findings = read_openi_findings(paths[REPORTS_CSV])
    projections = read_projections(paths[PROJECTIONS_CSV])
    rexrank = {split: _read_json(paths[f]) for split, f in REXRANK_FILES.items()}

    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    split_extra: dict[str, dict[str, Any]] = {}
    disagreements: list[str] = []
    for split in SPLITS:
        rows = []
        for entry in annotation[split]:
            sid, uid = entry["id"], uid_of(entry["id"])
            if findings.get(uid) != entry["report"]:
                raise DataError(f"{sid}: annotation.json report differs from indiana_reports.csv findings")
            choice = choose_frontal(projections[uid])
            images = [f"images/{p}" for p in entry["image_path"]]
            if [Path(p).name for p in entry["image_path"]] != ["0.png", "1.png"]:
                raise DataError(f"{sid}: unexpected image_path {entry['image_path']}")
            if split in rexrank and _rexrank_key_index(rexrank[split][sid]) != choice.index:
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
        if len(rows) != EXPECTED_STUDIES[split]:
            raise DataError(f"annotation.json {split} has {len(rows)} studies, R2Gen's has {EXPECTED_STUDIES[split]}")
        rows_by_split[split] = rows
        extra: dict[str, Any] = {"frontal_source": dict(sorted(Counter(r["frontal_source"] for r in rows).items()))}
        if split in rexrank:
            extra["frontal_equals_rexrank_key"] = len(rows) - sum(d.startswith(f"{split}/") for d in disagreements)
        split_extra[split] = extra
    if disagreements:
        raise DataError(f"frontal differs from ReXrank key_image_path for {name_some(disagreements)}")

    n_reports = len(findings)
    with_findings = {uid for uid, text in findings.items() if text.strip()}
    two_images = {uid for uid in with_findings if len(projections.get(uid, ())) >= 2}
    header = {
        "name": NAME,
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
             "origin": "R2Gen iu_xray archive; = github.com/cuhksz-nlp/R2Gen refs/pull/26/head data/iu_xray/r2gen/annotation.json"},
            {"file": REPORTS_CSV, "sha256": sha256_file(paths[REPORTS_CSV]), "role": "reference text when annotation.json is absent",
             "origin": "kaggle.com/datasets/raddar/chest-xrays-indiana-university"},
            {"file": PROJECTIONS_CSV, "sha256": sha256_file(paths[PROJECTIONS_CSV]), "role": "view of each Open-i image",
             "origin": "kaggle.com/datasets/raddar/chest-xrays-indiana-university"},
            *({"file": f, "sha256": sha256_file(paths[f]), "role": f"check of the frontal choice ({split})",
               "origin": "github.com/rajpurkarlab/ReXrank data/iu_xray"} for split, f in REXRANK_FILES.items()),
        ],
        "exclusions": {
            "openi_reports_in_kaggle_csv": n_reports,
            "no_findings": n_reports - len(with_findings),
            "fewer_than_two_images": len(with_findings) - len(two_images),
            "included": sum(len(r) for r in rows_by_split.values()),
        },
    }
    return write_manifest_dir(Path(out_dir), header, rows_by_split, split_extra=split_extra)


# ----------------------------------------------------------------------------- dataset


@functools.lru_cache(maxsize=1)
def _manifest() -> Manifest:
    return load_manifest(NAME)


@dataclass
class _References:
    """The user's reference text, whichever file it came from."""

    source: Path
    by_id: dict[str, tuple[str | None, str]]  # id -> (split in the source file or None, text)


class IUXrayR2Gen(Dataset):
    """R2Gen's IU X-Ray split; references from the user's annotation.json or Open-i CSV."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "IU X-Ray, R2Gen split 2,069/296/590, findings (text from your annotation.json or Open-i CSV)"
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
                rows = [r for split in SPLITS for r in _manifest().rows(split)]
                self._refs = _References(
                    root / REPORTS_CSV, {r["study_id"]: (None, findings[r["uid"]]) for r in rows if r["uid"] in findings}
                )
        return self._refs

    # -- checking

    def _problems(self, split: str) -> list[str]:
        rows = _manifest().rows(split)
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
        rows = _manifest().rows(split)
        if len(rows) != EXPECTED_STUDIES[split]:
            raise DataError(f"{NAME}: manifest {split} lists {len(rows)} studies, R2Gen's split has {EXPECTED_STUDIES[split]}")
        problems = self._problems(split)
        if problems:
            refs = self.references()
            raise mismatch_error(
                NAME, split, len(rows), problems, f"text from {refs.source}",
                hint="Use R2Gen's original annotation.json (sha256 in the manifest card) or the Kaggle indiana_reports.csv",
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
            report.missing.append(str(exc))
            return report
        report.present.append(f"reference text: {refs.source}")
        n_images = n_present = 0
        for split in SPLITS:
            rows = _manifest().rows(split)
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
        return _manifest().identity(split)
