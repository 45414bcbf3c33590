"""MIMIC-CXR as R2Gen splits and cleans it: one entry per image, R2Gen's cleaned findings as reference.

Why: R2Gen (Chen et al., EMNLP 2020) and the models built on its data — AM-MRG among them — train and
score on R2Gen's ``mimic_cxr/annotation.json``, not on studies: every image of a study with a findings
section is an entry (270,790 / 2,130 / 3,858 in train / val / test), the official split decides the
split, and the text is the findings cleaned by R2Gen's ``clean_report_mimic_cxr``. That file is not
public (MIMIC text), so this dataset is rebuilt from the user's PhysioNet copy with the same files,
section rules and readers as ``mimic_cxr/official`` and ``mimic_cxr/rexrank`` (``physionet``,
``sections``); the cleaner is the one ``nlg[conv=r2gen]`` uses (``rrg_bench.metrics.nlg.r2gen``).

Selection: every study of the official split whose report exists, is not one of the 54 reports MIT-LCP
sections by hand, and has a non-empty findings section; each of its images (any view) is an entry whose
id is the image's ``dicom_id``. Reference: ``clean_report_mimic_cxr`` of the findings section as
extracted (line breaks included: the cleaner joins lines itself). With ``annotation_json`` (R2Gen's own
file, if the user has it) the entries, splits and report text come from that file instead — R2Gen's
exact protocol — and every difference from the PhysioNet selection is listed. Preparation compares the
entry counts with R2Gen's published ones and stops on a difference unless count checks are off (the
data is then marked ``official: false``); see the card for what is verified.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.preparer import Preparer, PrepareRequest
from rrg_bench.datasets.base import committed_manifest, read_json
from rrg_bench.datasets.mimic_cxr import physionet
from rrg_bench.datasets.mimic_cxr.sections import findings_section
from rrg_bench.datasets.prepared import PreparedDataset, count_check, prepared_header, split_counts
from rrg_bench.errors import DataError
from rrg_bench.manifests import Progress, sha256_file, sha256_text, write_manifest_dir

NAME = "mimic_cxr/r2gen"
PREPARED_SUBDIR = Path("mimic_cxr") / "r2gen"
EXCLUSION_REASONS = ("no_report", "custom_rule_report", "no_findings")
SOURCE_PHYSIONET, SOURCE_ANNOTATION = "physionet", "r2gen_annotation"
ANNOTATION_SPLITS = {"train": "train", "val": "val", "test": "test"}

HOW_TO_GET = physionet.instructions(
    NAME, " (add --option annotation_json=FILE with R2Gen's mimic_cxr annotation.json for R2Gen's exact entries)")


def r2gen_cleaner() -> Callable[[str], str]:
    """R2Gen's MIMIC-CXR cleaner (imported when preparing only: ``bench ls`` stays light)."""
    from rrg_bench.metrics.nlg.r2gen import clean_report_mimic_cxr

    return clean_report_mimic_cxr


def entry_rows(sid: str, source: physionet.SourceStudy, views: dict[str, str], findings: str,
               clean: Callable[[str], str]) -> list[dict[str, Any]]:
    """One row per image of a study (dicom_id order), each with the study's cleaned findings."""
    reference = clean(findings)
    rows = []
    for dicom in sorted(source.dicoms):
        image = physionet.image_relpath(source.subject, sid, dicom)
        view = views.get(dicom, "")
        rows.append({"study_id": dicom, "mimic_study_id": sid, "subject_id": source.subject, "images": [image],
                     "views": [view], "frontal": image if view in physionet.FRONTAL_VIEWS else None,
                     "reference_sha256": sha256_text(reference), "reference": reference})
    return rows


def _physionet_rows(by_split: dict[str, dict[str, physionet.SourceStudy]], views: dict[str, str],
                    reports: physionet.Reports, clean: Callable[[str], str], progress: Progress | None
                    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, int]]]:
    total = sum(len(s) for s in by_split.values())
    advance = progress("sectioning MIMIC-CXR reports", total) if progress is not None else (lambda n=1: None)
    rows: dict[str, list[dict[str, Any]]] = {}
    excluded: dict[str, dict[str, int]] = {}
    for split in physionet.SPLITS:
        rows[split], excluded[split] = [], {r: 0 for r in EXCLUSION_REASONS}
        for n, (sid, source) in enumerate(physionet.by_patient(by_split[split]), 1):
            if n % 1000 == 0:
                advance(1000)
            text, reason = reports.selected(source.subject, sid)
            findings = findings_section(text) if text is not None else None
            if reason is None and not (findings or "").strip():
                reason = "no_findings"
            if reason is not None:
                excluded[split][reason] += 1
                continue
            rows[split] += entry_rows(sid, source, views, findings or "", clean)
        advance(len(by_split[split]) % 1000)
    return rows, excluded


def _annotation_rows(path: Path, views: dict[str, str], clean: Callable[[str], str]) -> dict[str, list[dict[str, Any]]]:
    """R2Gen's own entries (``{"train": [...], "val": [...], "test": [...]}``, one image each)."""
    data = read_json(path)
    if not isinstance(data, dict) or set(ANNOTATION_SPLITS) - set(data):
        raise DataError(f"{path}: expected R2Gen's annotation.json with 'train', 'val' and 'test' lists")
    rows: dict[str, list[dict[str, Any]]] = {}
    for source_split, split in ANNOTATION_SPLITS.items():
        rows[split] = []
        for n, entry in enumerate(data[source_split]):
            try:
                image = "files/" + str(entry["image_path"][0]).lstrip("/")
                eid, report = str(entry["id"]), str(entry["report"])
                study, subject = str(entry["study_id"]), str(entry["subject_id"])
            except (KeyError, IndexError, TypeError):
                raise DataError(f"{path}: {source_split}[{n}] lacks id, study_id, subject_id, report or "
                                "image_path") from None
            view = views.get(Path(image).stem, "")
            reference = clean(report)
            rows[split].append({"study_id": eid, "mimic_study_id": study, "subject_id": subject, "images": [image],
                                "views": [view], "frontal": image if view in physionet.FRONTAL_VIEWS else None,
                                "reference_sha256": sha256_text(reference), "reference": reference})
    return rows


def differences(rows: dict[str, list[dict[str, Any]]], selected: dict[str, list[dict[str, Any]]] | None
                ) -> tuple[list[str], list[str]]:
    """(entry counts that differ from R2Gen's published ones, entries that differ from the PhysioNet selection)."""
    published = {split: split_counts(info)["studies"] for split, info in committed_manifest(NAME).splits.items()}
    mismatches = [f"{split}: {len(rows[split]):,} entries (R2Gen: {n:,})" for split, n in published.items()
                  if len(rows[split]) != n]
    diffs: list[str] = []
    if selected is not None:
        for split in rows:
            ours = {r["study_id"] for r in selected[split]}
            theirs = {r["study_id"] for r in rows[split]}
            diffs += [f"{split}/{e}: in annotation.json, not selected from PhysioNet" for e in sorted(theirs - ours)]
            diffs += [f"{split}/{e}: selected from PhysioNet, not in annotation.json" for e in sorted(ours - theirs)]
    return mismatches, diffs


def prepare_mimic_cxr_r2gen(physionet_root: Path, out_dir: Path, *, annotation_json: Path | None = None,
                            check_counts: bool = True, progress: Progress | None = None) -> R2GenPrepareReport:
    """Build ``<data root>/mimic_cxr/r2gen`` from a PhysioNet copy (and optionally R2Gen's annotation.json).

    Raises ``DataError`` on missing or malformed inputs and, with ``check_counts``, when the entry counts
    differ from R2Gen's 270,790 / 2,130 / 3,858 (or the annotation's entries from the PhysioNet selection).
    """
    copy, out_dir = physionet.open_copy(physionet_root, out_dir, HOW_TO_GET)
    by_split = physionet.read_split(copy.split_csv)
    dicoms = {d for studies in by_split.values() for study in studies.values() for d in study.dicoms}
    views = physionet.read_views(copy.metadata_csv, dicoms)
    sample = [(s.subject, sid) for studies in by_split.values() for sid, s in list(studies.items())[:50]]
    reports = physionet.locate_reports(copy.root, sample, HOW_TO_GET)
    clean = r2gen_cleaner()
    try:
        selected, excluded = _physionet_rows(by_split, views, reports, clean, progress)
        sources = physionet.source_files(copy, reports)
    finally:
        reports.close()
    rows = _annotation_rows(Path(annotation_json), views, clean) if annotation_json is not None else selected
    mismatches, diffs = differences(rows, selected if annotation_json is not None else None)
    problems = mismatches + diffs
    if problems and check_counts:
        raise DataError(f"the prepared R2Gen MIMIC-CXR entries differ from R2Gen's: {'; '.join(problems[:12])}"
                        f"{f' … ({len(problems)} in all)' if len(problems) > 12 else ''}. Prepare with "
                        "--no-check-counts to use them anyway (the data is then marked official: false)")
    if annotation_json is not None:
        sources["annotation.json"] = sha256_file(Path(annotation_json))
    committed = committed_manifest(NAME)
    header = {**prepared_header(committed, "Locally prepared from the user's PhysioNet copy; never commit or share "
                                           "this folder (PhysioNet DUA).", official=not problems),
              "reference_source": SOURCE_ANNOTATION if annotation_json is not None else SOURCE_PHYSIONET,
              "view_policy": committed.view_policy, "sources": [{"file": f, "sha256": h} for f, h in sources.items()],
              "physionet_root": str(copy.root), "image_root": str(copy.image_root),
              "count_check": count_check(problems)}
    split_extra = {s: {"source_studies": len(by_split[s]), "excluded_studies": excluded[s]} for s in physionet.SPLITS}
    manifest_path = write_manifest_dir(out_dir, header, rows, split_extra=split_extra)
    return R2GenPrepareReport(out_dir, manifest_path, not problems, {s: len(r) for s, r in rows.items()}, excluded,
                              header["reference_source"], problems)


class R2GenPrepareReport:
    """What ``prepare_mimic_cxr_r2gen`` did; the CLI prints ``summary``."""

    def __init__(self, out_dir: Path, manifest_path: Path, official: bool, entries: dict[str, int],
                 excluded: dict[str, dict[str, int]], reference_source: str, problems: list[str]) -> None:
        self.out_dir, self.manifest_path, self.official, self.entries = out_dir, manifest_path, official, entries
        self.excluded, self.reference_source, self.problems = excluded, reference_source, problems

    def summary(self) -> str:
        lines = [f"prepared {NAME} in {self.out_dir} (official: {self.official}, entries from {self.reference_source})"]
        for split, n in self.entries.items():
            dropped = ", ".join(f"{k} {v:,}" for k, v in self.excluded[split].items() if v) or "none"
            lines.append(f"{split}: {n:,} entries (one per image); studies excluded: {dropped}")
        return "\n".join(lines + [f"differs from R2Gen: {p}" for p in self.problems[:20]])


class MimicCxrR2Gen(PreparedDataset):
    """R2Gen's MIMIC-CXR entries (one image each) with R2Gen-cleaned findings — from the prepared folder."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = ("MIMIC-CXR as R2Gen splits it: one entry per image (270,790/2,130/3,858), "
                                  "R2Gen-cleaned findings (prepared locally)")
    splits: ClassVar[tuple[str, ...]] = physionet.SPLITS
    reference_policy: ClassVar[str] = "r2gen_clean_findings"
    manifest_name: ClassVar[str] = NAME
    prepared_subdir: ClassVar[Path] = PREPARED_SUBDIR
    how_to_get: ClassVar[str] = HOW_TO_GET
    prepare_command: ClassVar[str] = NAME
    row_meta: ClassVar[tuple[str, ...]] = ("subject_id", "mimic_study_id")
    manifest_meta: ClassVar[tuple[str, ...]] = ("reference_source",)
    not_official: ClassVar[str] = "entries differ from R2Gen's published ones"

    def check_split(self, split: str) -> None:
        """Nothing to do: the manifests refuse an unknown split (a usage error, as for shipped datasets)."""


class MimicCxrR2GenPreparer(Preparer):
    """Build ``mimic_cxr/r2gen`` from a PhysioNet MIMIC-CXR(-JPG) 2.0.0 copy."""

    subdir = PREPARED_SUBDIR.as_posix()
    options = {"annotation_json": "R2Gen's mimic_cxr annotation.json: its entries, splits and report text"}

    def prepare(self, request: PrepareRequest) -> R2GenPrepareReport:
        annotation = request.options.get("annotation_json")
        return prepare_mimic_cxr_r2gen(request.source, request.output_dir,
                                       annotation_json=Path(annotation) if annotation else None,
                                       check_counts=request.check_counts, progress=request.progress)
