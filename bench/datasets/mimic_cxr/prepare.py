"""``bench data prepare mimic_cxr``: build ``mimic_cxr/official`` from the user's PhysioNet copy.

Why the published counts are checked first: a split file that is not the published 2.0.0 one
would give a different test set under the same dataset name. Preparation stops, or — with
count checks off — writes the data marked ``official: false``, which every record carries.
The policies are in ``official``'s docstring and the dataset card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrg_bench.api.preparer import Preparer, PrepareRequest
from rrg_bench.datasets.base import committed_manifest
from rrg_bench.datasets.mimic_cxr.official import HOW_TO_GET, NAME, PREPARED_SUBDIR
from rrg_bench.datasets.mimic_cxr.physionet import (
    FRONTAL_VIEWS,
    SPLITS,
    PhysioNetCopy,
    Reports,
    SourceStudy,
    by_patient,
    collapse,
    image_relpath,
    locate_reports,
    open_copy,
    read_split,
    read_views,
    source_files,
)
from rrg_bench.datasets.mimic_cxr.sections import findings_section
from rrg_bench.datasets.prepared import count_check, count_mismatches, prepared_header, split_counts
from rrg_bench.errors import DataError
from rrg_bench.manifests import Progress, sha256_text, write_manifest_dir

EXCLUSION_REASONS = ("no_report", "custom_rule_report", "no_findings", "no_frontal_image")


def published_counts() -> dict[str, dict[str, int]]:
    """MIMIC-CXR 2.0.0's published counts per split (from the committed manifest)."""
    return {s: split_counts(info) for s, info in committed_manifest(NAME).splits.items()}


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


def _count_mismatches(by_split: dict[str, dict[str, SourceStudy]]) -> list[str]:
    problems = []
    for split, expected in published_counts().items():
        studies = by_split[split]
        got = {"studies": len(studies), "images": sum(len(s.dicoms) for s in studies.values())}
        problems += count_mismatches(got, expected, "published ", prefix=f"{split}: ")
    return problems


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
    copy, out_dir = open_copy(physionet_root, out_dir, HOW_TO_GET)
    by_split = read_split(copy.split_csv)
    mismatches = _count_mismatches(by_split)
    if mismatches and check_counts:
        raise DataError(
            f"{copy.split_csv} is not the published MIMIC-CXR 2.0.0 split: {'; '.join(mismatches)}. Use the unmodified "
            f"file from PhysioNet, or prepare with count checks off (the result is then marked non-official)"
        )
    dicoms = {d for studies in by_split.values() for s in studies.values() for d in s.dicoms}
    views = read_views(copy.metadata_csv, dicoms)
    sample = [(s.subject, sid) for studies in by_split.values() for sid, s in list(studies.items())[:50]]
    reports = locate_reports(copy.root, sample, HOW_TO_GET)
    try:
        rows_by_split, prepared = _rows(by_split, views, reports, progress)
        sources = source_files(copy, reports)
    finally:
        reports.close()
    header = _header(copy, sources, mismatches)
    split_extra = {
        s: {"source_studies": p.studies_in_split, "source_images": p.images_in_split, "excluded": p.excluded}
        for s, p in prepared.items()
    }
    manifest_path = write_manifest_dir(out_dir, header, rows_by_split, split_extra=split_extra)
    return PrepareReport(out_dir=out_dir, manifest_path=manifest_path, official=not mismatches, splits=prepared,
                         count_mismatches=mismatches, sources=sources, reports_source=reports.description)


def _rows(by_split: dict[str, dict[str, SourceStudy]], views: dict[str, str], reports: Reports,
          progress: Progress | None) -> tuple[dict[str, list[dict[str, Any]]], dict[str, PreparedSplit]]:
    """Every split's included rows, in prepared-manifest order, and what was excluded why."""
    total = sum(len(s) for s in by_split.values())
    advance = progress("sectioning MIMIC-CXR reports", total) if progress is not None else (lambda n=1: None)
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    prepared: dict[str, PreparedSplit] = {}
    for split in SPLITS:
        studies = by_split[split]
        info = PreparedSplit(len(studies), sum(len(s.dicoms) for s in studies.values()),
                             excluded={r: 0 for r in EXCLUSION_REASONS})
        rows = []
        for n, (sid, source) in enumerate(by_patient(studies)):
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
    return rows_by_split, prepared


def _study_row(sid: str, source: SourceStudy, views: dict[str, str],
               reports: Reports) -> tuple[dict[str, Any], str | None]:
    text, reason = reports.selected(source.subject, sid)
    if text is None:
        return {}, reason
    reference = collapse(findings_section(text))
    if reference is None:
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


def _header(copy: PhysioNetCopy, sources: dict[str, str], mismatches: list[str]) -> dict[str, Any]:
    committed = committed_manifest(NAME)
    description = "Locally prepared from the user's PhysioNet copy; never commit or share this folder (PhysioNet DUA)."
    return {
        **prepared_header(committed, description, official=not mismatches),
        "view_policy": committed.view_policy,
        "sources": [{"file": f, "sha256": h} for f, h in sources.items()],
        "physionet_root": str(copy.root),
        "image_root": str(copy.image_root),
        "count_check": count_check(mismatches),
    }


class MimicCxrOfficialPreparer(Preparer):
    """Build ``mimic_cxr/official`` from a PhysioNet MIMIC-CXR(-JPG) 2.0.0 copy."""

    subdir = PREPARED_SUBDIR.as_posix()

    def prepare(self, request: PrepareRequest) -> PrepareReport:
        return prepare_mimic_cxr(request.source, request.output_dir, check_counts=request.check_counts,
                                 progress=request.progress)
