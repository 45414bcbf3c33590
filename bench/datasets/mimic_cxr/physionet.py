"""The user's PhysioNet copy of MIMIC-CXR(-JPG) 2.0.0: finding its files and reading them.

Why a module of its own: both MIMIC-CXR datasets (``official`` and ``rexrank``) are prepared
from the same files, read the same way — the split and metadata CSVs, the reports from
``mimic-cxr-reports.zip`` or a ``files/`` tree, the exclusion of the reports MIT-LCP sections
by hand — and must agree on every study they share.
"""

from __future__ import annotations

import csv
import gzip
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rrg_bench.datasets.mimic_cxr.sections import CUSTOM_RULE_STUDIES
from rrg_bench.datasets.prepared import find_file, refuse_repository_target, subdirs
from rrg_bench.errors import DataError
from rrg_bench.manifests import sha256_bytes, sha256_file, sha256_text

SPLITS = ("train", "val", "test")
SOURCE_SPLITS = {"train": "train", "validate": "val", "test": "test"}
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv.gz"
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv.gz"
REPORTS_ZIP = "mimic-cxr-reports.zip"
FRONTAL_VIEWS = ("PA", "AP")  # preference order for the study's frontal image

#: what to download, the start of every MIMIC-CXR dataset's how-to-get text
PHYSIONET_FILES = (
    "MIMIC-CXR is credentialed data: get MIMIC-CXR-JPG 2.0.0 (mimic-cxr-2.0.0-split.csv.gz, "
    "mimic-cxr-2.0.0-metadata.csv.gz, files/) and the MIMIC-CXR reports (mimic-cxr-reports.zip or the "
    "files/p1X/p<subject>/s<study>.txt tree) from physionet.org after signing the data use agreement"
)


def instructions(dataset: str, extra: str = "") -> str:
    """The how-to-get text of a MIMIC-CXR dataset prepared by ``bench data prepare <dataset>``."""
    return (f"{PHYSIONET_FILES}, then run `bench data prepare {dataset} --physionet-root DIR --data-root DATA_ROOT`"
            f"{extra}, which writes the prepared folder into your data root. Point the harness at the data root "
            f"with --data-root DATA_ROOT or BENCH_DATA_ROOT=DATA_ROOT.")


_REPORT_MEMBER = re.compile(r"(?:^|/)p\d\d/p(\d+)/s(\d+)\.txt$")

# ----------------------------------------------------------------------------- locating files


def _is_mimic_files_dir(directory: Path) -> bool:
    return directory.name == "files" and any((directory / f"p{n}").is_dir() for n in range(10, 20))


def _files_dirs(root: Path, max_depth: int = 5) -> list[Path]:
    """Every MIMIC ``files/`` folder (holding p10…p19) at most ``max_depth`` levels below ``root``."""
    found: list[Path] = []
    level = [root]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for directory in level:
            for child in subdirs(directory):
                (found if _is_mimic_files_dir(child) else nxt).append(child)
        level = nxt
    return found


@dataclass(frozen=True)
class PhysioNetCopy:
    """The user's copy, located: its root and the two CSVs (images are looked up next to the split file)."""

    root: Path
    split_csv: Path
    metadata_csv: Path

    @property
    def image_root(self) -> Path:
        return self.split_csv.parent


def open_copy(physionet_root: Path, out_dir: Path, how_to: str) -> tuple[PhysioNetCopy, Path]:
    """Locate the copy's CSVs and resolve ``out_dir``, refusing a target inside a git working tree."""
    root, out_dir = Path(physionet_root).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"PhysioNet root {root} does not exist. {how_to}")
    refuse_repository_target(out_dir, "MIMIC-CXR report text", "the PhysioNet DUA")
    split_csv, metadata_csv = find_file(root, SPLIT_CSV), find_file(root, METADATA_CSV)
    if split_csv is None or metadata_csv is None:
        absent = [n for n, p in ((SPLIT_CSV, split_csv), (METADATA_CSV, metadata_csv)) if p is None]
        raise DataError(f"{', '.join(absent)} not found under {root}. {how_to}")
    return PhysioNetCopy(root, split_csv, metadata_csv), out_dir


# ----------------------------------------------------------------------------- reports


def _report_relpath(subject: str, study: str) -> str:
    return f"p{subject[:2]}/p{subject}/s{study}.txt"


class Reports:
    """Report text by study, from mimic-cxr-reports.zip or a files/ tree of .txt files."""

    def __init__(self, zip_path: Path | None, tree: Path | None) -> None:
        self.zip_path, self.tree = zip_path, tree
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        self._tree_hashes: list[str] = []
        if zip_path is not None:
            try:
                self._zip = zipfile.ZipFile(zip_path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise DataError(f"{zip_path}: not a readable zip ({exc})") from None
            for member in self._zip.namelist():
                match = _REPORT_MEMBER.search(member)
                if match:
                    self._members[match.group(2)] = member

    @property
    def description(self) -> str:
        return str(self.zip_path) if self.zip_path is not None else f"{self.tree} (*.txt)"

    def read(self, subject: str, study: str) -> str | None:
        """The report with universal newlines (as Python's text mode gives upstream); None if absent."""
        if self._zip is not None:
            member = self._members.get(study)
            if member is None:
                return None
            raw, where = self._zip.read(member), f"{self.zip_path}:{member}"
        else:
            assert self.tree is not None
            path = self.tree / _report_relpath(subject, study)
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                return None
            where = str(path)
            self._tree_hashes.append(f"{_report_relpath(subject, study)}\0{sha256_bytes(raw)}\n")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def selected(self, subject: str, study: str) -> tuple[str | None, str | None]:
        """``(text, None)`` for a report MIT-LCP sections automatically, else ``(None, exclusion reason)``."""
        text = self.read(subject, study)
        if text is None:
            return None, "no_report"
        if f"s{study}" in CUSTOM_RULE_STUDIES:
            return None, "custom_rule_report"
        return text, None

    def sha256(self) -> str:
        """The zip's sha256, or a digest of the (path, content hash) list of the reports read."""
        if self.zip_path is not None:
            return sha256_file(self.zip_path)
        return sha256_text("".join(sorted(self._tree_hashes)))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def locate_reports(root: Path, sample: list[tuple[str, str]], how_to: str) -> Reports:
    zip_path = find_file(root, REPORTS_ZIP)
    if zip_path is not None:
        return Reports(zip_path, None)
    for files in _files_dirs(root):
        if any((files / _report_relpath(sub, st)).is_file() for sub, st in sample):
            return Reports(None, files)
    raise DataError(
        f"no MIMIC-CXR reports under {root}: expected {REPORTS_ZIP} or files/p1X/p<subject>/s<study>.txt. {how_to}"
    )


def collapse(section: str | None) -> str | None:
    """A section with every run of whitespace (MIMIC's line wraps too) as one space; None if empty."""
    collapsed = " ".join(section.split()) if section is not None else ""
    return collapsed or None


def source_files(copy: PhysioNetCopy, reports: Reports) -> dict[str, str]:
    """file -> sha256 of what a prepared folder was built from (call after reading the reports)."""
    reports_key = REPORTS_ZIP if reports.zip_path is not None else "reports_tree (digest of the reports read)"
    return {SPLIT_CSV: sha256_file(copy.split_csv), METADATA_CSV: sha256_file(copy.metadata_csv),
            reports_key: reports.sha256()}


# ----------------------------------------------------------------------------- CSVs


def _gz_rows(path: Path, needed: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found {reader.fieldnames})")
            yield from enumerate(reader, start=2)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as a gzipped UTF-8 CSV ({type(exc).__name__}: {exc})") from None


@dataclass
class SourceStudy:
    subject: str
    dicoms: list[str] = field(default_factory=list)


def read_split(path: Path) -> dict[str, dict[str, SourceStudy]]:
    by_split: dict[str, dict[str, SourceStudy]] = {s: {} for s in SPLITS}
    home: dict[str, str] = {}
    for n, row in _gz_rows(path, ("dicom_id", "study_id", "subject_id", "split")):
        split = SOURCE_SPLITS.get(row["split"])
        if split is None:
            raise DataError(f"{path}:{n}: unknown split {row['split']!r} (expected train, validate or test)")
        study, subject = row["study_id"].strip(), row["subject_id"].strip()
        if not study.isdigit() or not subject.isdigit():
            raise DataError(f"{path}:{n}: study_id/subject_id must be integers, got {study!r}/{subject!r}")
        if home.setdefault(study, split) != split:
            raise DataError(f"{path}:{n}: study {study} is in both {home[study]} and {split}")
        entry = by_split[split].setdefault(study, SourceStudy(subject))
        if entry.subject != subject:
            raise DataError(f"{path}:{n}: study {study} has subjects {entry.subject} and {subject}")
        entry.dicoms.append(row["dicom_id"].strip())
    return by_split


def by_patient(studies: dict[str, SourceStudy]) -> list[tuple[str, SourceStudy]]:
    """The studies in prepared-manifest order: by subject, then study id, as integers."""
    return sorted(studies.items(), key=lambda kv: (int(kv[1].subject), int(kv[0])))


def read_views(path: Path, wanted: set[str]) -> dict[str, str]:
    views: dict[str, str] = {}
    for _, row in _gz_rows(path, ("dicom_id", "ViewPosition")):
        if row["dicom_id"] in wanted:
            views[row["dicom_id"]] = row["ViewPosition"].strip()
    return views


def image_relpath(subject: str, study: str, dicom: str) -> str:
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"
