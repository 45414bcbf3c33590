"""MIMIC-CXR 2.0.0, official split, findings section, studies with a frontal (AP/PA) image.

MIMIC-CXR is credentialed (PhysioNet DUA): no id, path or word of it is committed. The
committed manifest (data_manifests/mimic_cxr/official) holds only the policies and the
published counts. ``prepare_mimic_cxr`` builds the study list and the references from the
user's own PhysioNet copy into the user's data root; ``MimicCxrOfficial`` loads from there.

Policies (the card has the details):
- split: ``mimic-cxr-2.0.0-split.csv.gz`` as published (``validate`` is called ``val`` here);
  its per-split study and image counts must equal the published ones, else the prepared
  data is marked non-official (``check_counts=False``) or preparation stops.
- reference: the findings section by the MIT-LCP section rules (``mimic_sections``), the
  last findings section of the report, with runs of whitespace collapsed to one space.
- view: frontal = ``ViewPosition`` AP or PA in ``mimic-cxr-2.0.0-metadata.csv.gz``; the
  study's frontal image is its first PA image by dicom_id, else its first AP image.
- exclusions, counted per split, first reason wins: no report file, report sectioned by hand
  upstream (absent from ``mimic_cxr_sectioned.csv``), no findings section, no frontal image.
"""

from __future__ import annotations

import csv
import functools
import gzip
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

from rrg_bench.api.preparer import PrepareRequest, Preparer
from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.datasets.mimic_sections import CUSTOM_RULE_STUDIES, findings_section
from rrg_bench.errors import DataError
from rrg_bench.manifests import (
    Manifest,
    Progress,
    find_dataset_root,
    load_manifest,
    load_manifest_dir,
    mismatch_error,
    sha256_bytes,
    sha256_file,
    sha256_text,
    write_manifest_dir,
)
from rrg_bench.api.types import Study

NAME = "mimic_cxr/official"
SPLITS = ("train", "val", "test")
SOURCE_SPLITS = {"train": "train", "validate": "val", "test": "test"}
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv.gz"
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv.gz"
REPORTS_ZIP = "mimic-cxr-reports.zip"
FRONTAL_VIEWS = ("PA", "AP")  # preference order for the study's frontal image
#: where ``bench data prepare mimic_cxr`` writes, relative to the data root
PREPARED_SUBDIR = Path("mimic_cxr") / "official"
EXCLUSION_REASONS = ("no_report", "custom_rule_report", "no_findings", "no_frontal_image")

HOW_TO_GET = (
    "MIMIC-CXR is credentialed data: get MIMIC-CXR-JPG 2.0.0 (mimic-cxr-2.0.0-split.csv.gz, "
    "mimic-cxr-2.0.0-metadata.csv.gz, files/) and the MIMIC-CXR reports (mimic-cxr-reports.zip or the "
    "files/p1X/p<subject>/s<study>.txt tree) from physionet.org after signing the data use agreement, then run "
    "`bench data prepare mimic_cxr --physionet-root DIR`, which writes the prepared folder into your data root. "
    "Point the harness at the data root with --data-root DIR or BENCH_DATA_ROOT=DIR."
)

_REPORT_MEMBER = re.compile(r"(?:^|/)p\d\d/p(\d+)/s(\d+)\.txt$")


@functools.lru_cache(maxsize=1)
def committed_manifest() -> Manifest:
    """Policies and published counts; no ids, no text."""
    return load_manifest(NAME)


def published_counts() -> dict[str, dict[str, int]]:
    return {s: {"studies": i.studies, "images": int(i.images or 0)} for s, i in committed_manifest().splits.items()}


# ----------------------------------------------------------------------------- reports


@dataclass
class PreparedSplit:
    studies_in_split: int
    images_in_split: int
    included: int = 0
    included_images: int = 0
    excluded: dict[str, int] = field(default_factory=dict)


@dataclass
class PrepareReport:
    """What ``prepare_mimic_cxr`` did; the CLI prints it."""

    out_dir: Path
    manifest_path: Path
    official: bool  # False when the split counts differ from the published ones
    splits: dict[str, PreparedSplit]
    count_mismatches: list[str]
    sources: dict[str, str]  # file -> sha256
    reports_source: str

    def summary(self) -> str:
        """A few plain lines for the terminal."""
        lines = [f"prepared {NAME} in {self.out_dir} (official: {self.official})", f"reports: {self.reports_source}"]
        for split, info in self.splits.items():
            excluded = ", ".join(f"{k} {v:,}" for k, v in info.excluded.items() if v) or "none"
            lines.append(f"{split}: {info.included:,} of {info.studies_in_split:,} studies "
                         f"({info.included_images:,} images); excluded: {excluded}")
        lines += [f"split counts differ from the published ones: {m}" for m in self.count_mismatches]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- locating files


_PATIENT_DIR = re.compile(r"^[ps]\d+$")  # p10, p10000032, s50414267: the big per-patient tree


def _subdirs(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not _PATIENT_DIR.match(p.name))
    except OSError:
        return []


def _is_mimic_files_dir(directory: Path) -> bool:
    return directory.name == "files" and any((directory / f"p{n}").is_dir() for n in range(10, 20))


def find_file(root: Path, name: str, max_depth: int = 5) -> Path | None:
    """``root/name`` or the shallowest ``name`` below ``root`` (never walking the per-patient folders)."""
    level = [root]
    for _ in range(max_depth + 1):
        for directory in level:
            if (directory / name).is_file():
                return directory / name
        level = [child for directory in level for child in _subdirs(directory)]
    return None


def _files_dirs(root: Path, max_depth: int = 5) -> list[Path]:
    """Every MIMIC ``files/`` folder (holding p10…p19) at most ``max_depth`` levels below ``root``."""
    found, level = [], [root]
    for _ in range(max_depth + 1):
        nxt = []
        for directory in level:
            for child in _subdirs(directory):
                (found if _is_mimic_files_dir(child) else nxt).append(child)
        level = nxt
    return found


def _report_relpath(subject: str, study: str) -> str:
    return f"p{subject[:2]}/p{subject}/s{study}.txt"


class _Reports:
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

    def sha256(self) -> str:
        """The zip's sha256, or a digest of the (path, content hash) list of the reports read."""
        if self.zip_path is not None:
            return sha256_file(self.zip_path)
        return sha256_text("".join(sorted(self._tree_hashes)))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def locate_reports(root: Path, sample: list[tuple[str, str]]) -> _Reports:
    zip_path = find_file(root, REPORTS_ZIP)
    if zip_path is not None:
        return _Reports(zip_path, None)
    for files in _files_dirs(root):
        if any((files / _report_relpath(sub, st)).is_file() for sub, st in sample):
            return _Reports(None, files)
    raise DataError(
        f"no MIMIC-CXR reports under {root}: expected {REPORTS_ZIP} or files/p1X/p<subject>/s<study>.txt. {HOW_TO_GET}"
    )


def _gz_rows(path: Path, needed: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found {reader.fieldnames})")
            for n, row in enumerate(reader, start=2):
                yield n, row
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as a gzipped UTF-8 CSV ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------- prepare


@dataclass
class _SourceStudy:
    subject: str
    dicoms: list[str] = field(default_factory=list)


def read_split(path: Path) -> dict[str, dict[str, _SourceStudy]]:
    by_split: dict[str, dict[str, _SourceStudy]] = {s: {} for s in SPLITS}
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
        entry = by_split[split].setdefault(study, _SourceStudy(subject))
        if entry.subject != subject:
            raise DataError(f"{path}:{n}: study {study} has subjects {entry.subject} and {subject}")
        entry.dicoms.append(row["dicom_id"].strip())
    return by_split


def read_views(path: Path, wanted: set[str]) -> dict[str, str]:
    views: dict[str, str] = {}
    for _, row in _gz_rows(path, ("dicom_id", "ViewPosition")):
        if row["dicom_id"] in wanted:
            views[row["dicom_id"]] = row["ViewPosition"].strip()
    return views


def _count_mismatches(by_split: dict[str, dict[str, _SourceStudy]]) -> list[str]:
    problems = []
    for split, expected in published_counts().items():
        studies = by_split[split]
        got = {"studies": len(studies), "images": sum(len(s.dicoms) for s in studies.values())}
        for what in ("studies", "images"):
            if got[what] != expected[what]:
                problems.append(f"{split}: {got[what]:,} {what} (published {expected[what]:,})")
    return problems


def image_relpath(subject: str, study: str, dicom: str) -> str:
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"


def prepare_mimic_cxr(
    physionet_root: Path,
    out_dir: Path,
    *,
    check_counts: bool = True,
    progress: Progress | None = None,
) -> PrepareReport:
    """Build the local ``mimic_cxr/official`` study lists and references from a PhysioNet copy.

    ``physionet_root`` holds (at any depth up to 5) the split and metadata CSVs of
    MIMIC-CXR-JPG 2.0.0 and either ``mimic-cxr-reports.zip`` or a ``files/`` tree with the
    ``s<study>.txt`` reports. Images are looked up next to the split file
    (``<dir>/files/p1X/...jpg``) and may be absent. ``out_dir`` should be in the user's
    data root (``<data root>/mimic_cxr/official``), never in a repository.

    Raises ``DataError`` if a file is missing or malformed, or (with ``check_counts``) if
    the split's study/image counts differ from the published 2.0.0 ones; with
    ``check_counts=False`` such data is prepared but marked ``official: false``.
    """
    physionet_root, out_dir = Path(physionet_root).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if not physionet_root.is_dir():
        raise DataError(f"PhysioNet root {physionet_root} does not exist. {HOW_TO_GET}")
    repo = next((p for p in (out_dir, *out_dir.parents) if (p / ".git").exists()), None)
    if repo is not None:
        raise DataError(
            f"refusing to write MIMIC-CXR report text to {out_dir}: it is inside the git working tree {repo}, "
            f"and the PhysioNet DUA forbids sharing the text. Choose a data root outside any repository"
        )
    split_csv, metadata_csv = find_file(physionet_root, SPLIT_CSV), find_file(physionet_root, METADATA_CSV)
    absent = [n for n, p in ((SPLIT_CSV, split_csv), (METADATA_CSV, metadata_csv)) if p is None]
    if absent:
        raise DataError(f"{', '.join(absent)} not found under {physionet_root}. {HOW_TO_GET}")
    assert split_csv is not None and metadata_csv is not None

    by_split = read_split(split_csv)
    mismatches = _count_mismatches(by_split)
    if mismatches and check_counts:
        raise DataError(
            f"{split_csv} is not the published MIMIC-CXR 2.0.0 split: {'; '.join(mismatches)}. Use the unmodified "
            f"file from PhysioNet, or prepare with count checks off (the result is then marked non-official)"
        )
    wanted = {d for studies in by_split.values() for s in studies.values() for d in s.dicoms}
    views = read_views(metadata_csv, wanted)
    sample = [(s.subject, sid) for studies in by_split.values() for sid, s in list(studies.items())[:50]]
    reports = locate_reports(physionet_root, sample)
    image_root = split_csv.parent

    total = sum(len(s) for s in by_split.values())
    advance = progress("sectioning MIMIC-CXR reports", total) if progress is not None else (lambda n=1: None)
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    prepared: dict[str, PreparedSplit] = {}
    try:
        for split in SPLITS:
            studies = by_split[split]
            info = PreparedSplit(len(studies), sum(len(s.dicoms) for s in studies.values()),
                                 excluded={r: 0 for r in EXCLUSION_REASONS})
            rows = []
            for n, (sid, source) in enumerate(sorted(studies.items(), key=lambda kv: (int(kv[1].subject), int(kv[0])))):
                if n % 1000 == 999:
                    advance(1000)
                row, reason = _study_row(sid, source, views, reports)
                if reason is not None:
                    info.excluded[reason] += 1
                    continue
                rows.append(row)
            advance(len(studies) % 1000)
            info.included = len(rows)
            info.included_images = sum(len(r["images"]) for r in rows)
            rows_by_split[split], prepared[split] = rows, info
        sources = {SPLIT_CSV: sha256_file(split_csv), METADATA_CSV: sha256_file(metadata_csv)}
        reports_key = REPORTS_ZIP if reports.zip_path is not None else "reports_tree (digest of the reports read)"
        sources[reports_key] = reports.sha256()
    finally:
        reports.close()

    committed = committed_manifest()
    header = {
        "name": NAME,
        "version": committed.version,
        "description": "Locally prepared from the user's PhysioNet copy; never commit or share this folder (PhysioNet DUA).",
        "official": not mismatches,
        "committed_manifest_sha256": committed.sha256,
        "reference_policy": committed.reference_policy,
        "view_policy": committed.view_policy,
        "sources": [{"file": f, "sha256": h} for f, h in sources.items()],
        "physionet_root": str(physionet_root),
        "image_root": str(image_root),
        "count_check": "passed" if not mismatches else "failed (check_counts=False): " + "; ".join(mismatches),
    }
    split_extra = {
        s: {"source_studies": p.studies_in_split, "source_images": p.images_in_split, "excluded": p.excluded}
        for s, p in prepared.items()
    }
    manifest_path = write_manifest_dir(out_dir, header, rows_by_split, split_extra=split_extra)
    return PrepareReport(
        out_dir=out_dir,
        manifest_path=manifest_path,
        official=not mismatches,
        splits=prepared,
        count_mismatches=mismatches,
        sources=sources,
        reports_source=reports.description,
    )


def _study_row(sid: str, source: _SourceStudy, views: dict[str, str], reports: _Reports) -> tuple[dict[str, Any], str | None]:
    text = reports.read(source.subject, sid)
    if text is None:
        return {}, "no_report"
    if f"s{sid}" in CUSTOM_RULE_STUDIES:
        return {}, "custom_rule_report"
    findings = findings_section(text)
    reference = " ".join(findings.split()) if findings is not None else ""
    if not reference:
        return {}, "no_findings"
    dicoms = sorted(source.dicoms)
    frontal = sorted((FRONTAL_VIEWS.index(views[d]), d) for d in dicoms if views.get(d) in FRONTAL_VIEWS)
    if not frontal:
        return {}, "no_frontal_image"
    return {
        "study_id": sid,
        "subject_id": source.subject,
        "images": [image_relpath(source.subject, sid, d) for d in dicoms],
        "views": [views.get(d, "") for d in dicoms],
        "frontal": image_relpath(source.subject, sid, frontal[0][1]),
        "reference_sha256": sha256_text(reference),
        "reference": reference,
    }, None


# ----------------------------------------------------------------------------- dataset


class MimicCxrOfficial(Dataset):
    """MIMIC-CXR official split, findings, AP/PA studies — from the locally prepared folder."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "MIMIC-CXR 2.0.0 official split, findings (MIT-LCP rules), AP/PA studies (prepare locally)"
    splits: ClassVar[tuple[str, ...]] = SPLITS
    reference_policy: ClassVar[str] = "findings"

    def root(self) -> Path:
        """The prepared folder: ``<data root>/mimic_cxr/official``, ``<data root>/mimic_cxr`` or the root itself."""
        if self.data_root is None:
            raise DataError(f"{NAME}: no data root given. {HOW_TO_GET}")
        found = find_dataset_root(self.data_root, (str(PREPARED_SUBDIR), PREPARED_SUBDIR.parts[0]), ("manifest.yaml",))
        if found is None:
            raise DataError(
                f"{NAME}: not prepared: no manifest.yaml in {self.data_root / PREPARED_SUBDIR}. {HOW_TO_GET}"
            )
        return found

    @functools.cached_property
    def prepared(self) -> Manifest:
        root = self.root()
        manifest = load_manifest_dir(root)
        if manifest.name != NAME:
            raise DataError(f"{root}/manifest.yaml is for {manifest.name!r}, not {NAME}")
        committed = committed_manifest()
        if manifest.version != committed.version or manifest.data.get("committed_manifest_sha256") != committed.sha256:
            raise DataError(
                f"{root} was prepared for {NAME} manifest v{manifest.version} ({str(manifest.data.get('committed_manifest_sha256'))[:12]}…); "
                f"this rrg-bench has v{committed.version} ({committed.sha256[:12]}…): run `bench data prepare mimic_cxr` again"
            )
        return manifest

    def _problems(self, split: str) -> list[str]:
        return [
            f"{row['study_id']}: reference sha256 differs"
            for row in self.prepared.rows(split)
            if sha256_text(str(row.get("reference", ""))) != row["reference_sha256"]
        ]

    def studies(self, split: str) -> list[Study]:
        rows = self.prepared.rows(split)
        problems = self._problems(split)
        if problems:
            raise mismatch_error(NAME, split, len(rows), problems, f"prepared data in {self.root()}",
                                 "Run `bench data prepare mimic_cxr` again")
        image_root = Path(self.prepared.data["image_root"])
        official = bool(self.prepared.data.get("official"))
        return [
            Study(
                study_id=row["study_id"],
                split=split,
                reference=row["reference"],
                reference_sha256=row["reference_sha256"],
                image_paths=tuple(image_root / p for p in row["images"]),
                frontal_image=image_root / row["frontal"],
                meta={"subject_id": row["subject_id"], "views": tuple(row["views"]), "official": official},
            )
            for row in rows
        ]

    def verify(self) -> VerifyReport:
        report = VerifyReport(dataset=NAME, data_root=self.data_root, ok=False, how_to_get=HOW_TO_GET)
        try:
            prepared = self.prepared
        except DataError as exc:
            report.missing.append(str(exc))
            return report
        report.present.append(f"prepared data: {self.root()} (official: {bool(prepared.data.get('official'))})")
        if not prepared.data.get("official"):
            report.mismatched.append(f"split counts differ from the published ones: {prepared.data.get('count_check')}")
        image_root = Path(prepared.data["image_root"])
        for split in SPLITS:
            try:
                rows = prepared.rows(split)
            except DataError as exc:
                report.mismatched.append(str(exc))
                continue
            problems = self._problems(split)
            report.mismatched += [f"{split}/{p}" for p in problems]
            if not problems:
                report.present.append(f"{split}: {len(rows)} references match the prepared manifest")
            absent = sum(not (image_root / row["frontal"]).is_file() for row in rows)
            line = f"{split}: frontal images {len(rows) - absent} of {len(rows)} under {image_root}"
            (report.present if absent == 0 else report.missing).append(line)
        report.ok = not report.mismatched
        return report

    def identity(self, split: str) -> dict[str, Any]:
        """Committed policies always; ids and reference hashes only once the data is prepared."""
        committed = committed_manifest()
        committed.split(split)
        block: dict[str, Any] = {
            "name": NAME,
            "manifest_version": committed.version,
            "manifest_sha256": committed.sha256,
            "split": split,
            "reference_policy": committed.reference_policy,
            "n_expected": None,
            "study_ids_sha256": None,
            "references_sha256": None,
            "prepared_manifest_sha256": None,
            "official": None,
        }
        try:
            prepared = self.prepared
        except DataError:
            return block
        block.update(prepared.identity(split))
        block["manifest_sha256"] = committed.sha256
        block["prepared_manifest_sha256"] = prepared.sha256
        block["official"] = bool(prepared.data.get("official"))
        return block


class MimicCxrOfficialPreparer(Preparer):
    """Build ``mimic_cxr/official`` from a PhysioNet MIMIC-CXR(-JPG) 2.0.0 copy."""

    subdir = PREPARED_SUBDIR.as_posix()

    def prepare(self, request: PrepareRequest) -> PrepareReport:
        return prepare_mimic_cxr(request.source, request.output_dir, check_counts=request.check_counts,
                                 progress=request.progress)
