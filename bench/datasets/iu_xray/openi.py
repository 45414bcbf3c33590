"""The IU X-Ray source files — R2Gen's ``annotation.json``, the Open-i/Kaggle CSVs — and which of
a study's images is frontal.

Image index is not view. R2Gen's folder ``images/<id>/`` holds every image of the report,
numbered in sorted Open-i file-name order, and ``annotation.json`` uses ``0.png`` and
``1.png``. The frontal image is the first of those two whose Open-i projection
(``indiana_projections.csv``) is Frontal; if neither is, ``1.png`` (the convention of
ReXrank's ``key_image_path``). The card (data_manifests/iu_xray/r2gen/README.md) explains
how the order was derived and how it was checked against ReXrank's key images.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rrg_bench.datasets.base import read_json
from rrg_bench.errors import DataError

ANNOTATION = "annotation.json"
REPORTS_CSV = "indiana_reports.csv"
PROJECTIONS_CSV = "indiana_projections.csv"

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


def read_annotation(path: Path) -> dict[str, tuple[str, str]]:
    """R2Gen ``annotation.json`` -> ``{id: (split, report)}``."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object with 'train', 'val' and 'test' lists")
    out: dict[str, tuple[str, str]] = {}
    for split, entries in data.items():
        if not isinstance(entries, list):
            raise DataError(f"{path}: {split!r} is not a list of studies (is this R2Gen's iu_xray annotation.json?)")
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "report")):
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
