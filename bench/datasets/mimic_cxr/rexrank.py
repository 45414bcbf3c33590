"""MIMIC-CXR as ReXrank evaluates it: the 2,347 official test studies with a findings section.

MIMIC-CXR is credentialed (PhysioNet DUA): nothing study-specific is committed. The committed
manifest (data_manifests/mimic_cxr/rexrank) holds policies and ReXrank's published counts;
``prepare_mimic_cxr_rexrank`` (``bench data prepare mimic_cxr/rexrank``) builds the study list
and references from the user's PhysioNet copy (the same files, section rules and readers as
``mimic_cxr/official``) into ``<data root>/mimic_cxr/rexrank``.

Selection: every study of the official ``test`` split whose report exists, is not one of the
54 hand-sectioned reports, and has a non-empty findings section (MIT-LCP rules). ReXrank
publishes 2,347 studies / 3,858 images for this set; preparation checks those counts.

References (``rrg_bench.datasets.rexrank_policy``): ``mimic_cxr/rexrank`` = "Findings: …
Impression: …" (a missing impression is the word ``None``), ``mimic_cxr/rexrank/findings`` =
findings only. Text source, recorded in the prepared manifest:

* ``physionet`` (default): the MIT-LCP findings and impression sections, whitespace runs
  collapsed to one space (as ``mimic_cxr/official``). ReXrank's own file puts each sentence on
  a line of its own, so these texts are *not* byte-identical to ReXrank's and the numbers can
  differ slightly (BLEU-2 tokens keep newlines).
* ``rexrank_json``: the sections of ReXrank's ``ReXRank_MIMICCXR_test.json`` (if the user has
  it), used as stored — ReXrank's exact references. The study set must equal the PhysioNet
  selection; every difference is reported.

View policy: ``frontal`` = the *last* AP/PA image of the study in dicom_id order (ReXrank's
``key_image_path`` agreed with this rule on every multi-image study we inspected).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.preparer import Preparer, PrepareRequest
from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.datasets.base import committed_manifest
from rrg_bench.datasets.mimic_cxr import physionet
from rrg_bench.datasets.mimic_cxr.sections import findings_section, impression_section
from rrg_bench.datasets.prepared import (
    PreparedDataset,
    count_check,
    count_mismatches,
    prepared_header,
    split_counts,
)
from rrg_bench.datasets.rexrank_json import read_rexrank_json
from rrg_bench.errors import DataError
from rrg_bench.manifests import Manifest, Progress, sha256_file, sha256_text, write_manifest_dir

NAME = "mimic_cxr/rexrank"
FINDINGS_NAME = "mimic_cxr/rexrank/findings"
SPLIT = "test"
PREPARED_SUBDIR = Path("mimic_cxr") / "rexrank"
REXRANK_JSON = "ReXRank_MIMICCXR_test.json"
EXCLUSION_REASONS = ("no_report", "custom_rule_report", "no_findings")
SOURCE_PHYSIONET = "physionet"
SOURCE_REXRANK_JSON = "rexrank_json"

HOW_TO_GET = physionet.instructions(
    NAME, f" (add --rexrank-json FILE with ReXrank's {REXRANK_JSON} for ReXrank's exact reference text)")


@dataclass
class RexrankPrepareReport:
    """What ``prepare_mimic_cxr_rexrank`` did."""

    out_dir: Path
    manifest_path: Path
    official: bool  # counts equal ReXrank's published ones (and, with the JSON, the same studies)
    studies_in_split: int
    included: int
    included_images: int
    excluded: dict[str, int]
    reference_source: str
    count_mismatches: list[str] = field(default_factory=list)
    json_differences: list[str] = field(default_factory=list)

    def summary(self) -> str:
        excluded = ", ".join(f"{k} {v:,}" for k, v in self.excluded.items() if v) or "none"
        lines = [f"prepared {NAME} in {self.out_dir} (official: {self.official}, references from "
                 f"{self.reference_source})",
                 f"test: {self.included:,} of {self.studies_in_split:,} studies ({self.included_images:,} images); "
                 f"excluded: {excluded}"]
        lines += [f"counts differ from ReXrank's: {m}" for m in self.count_mismatches]
        lines += [f"differs from {REXRANK_JSON}: {d}" for d in self.json_differences[:20]]
        return "\n".join(lines)


def prepare_mimic_cxr_rexrank(physionet_root: Path, out_dir: Path, *, rexrank_json: Path | None = None,
                              check_counts: bool = True, progress: Progress | None = None) -> RexrankPrepareReport:
    """Build the local ``mimic_cxr/rexrank`` study list and references from a PhysioNet copy.

    ``physionet_root`` as for ``prepare_mimic_cxr``. With ``rexrank_json`` the reference text
    is ReXrank's own (the study sets must agree). Raises ``DataError`` on missing or malformed
    inputs, and (with ``check_counts``) when the counts differ from ReXrank's 2,347 studies /
    3,858 images or from the JSON's study set; with ``check_counts=False`` the result is
    prepared but marked ``official: false``.
    """
    copy, out_dir = physionet.open_copy(physionet_root, out_dir, HOW_TO_GET)
    studies = physionet.read_split(copy.split_csv)[SPLIT]
    views = physionet.read_views(copy.metadata_csv, {d for s in studies.values() for d in s.dicoms})
    rexrank = read_rexrank_json(rexrank_json, required=("section_findings",)) if rexrank_json is not None else None
    sample = [(s.subject, sid) for sid, s in list(studies.items())[:50]]
    reports = physionet.locate_reports(copy.root, sample, HOW_TO_GET)
    advance = progress("sectioning MIMIC-CXR test reports", len(studies)) if progress is not None else None
    excluded = {r: 0 for r in EXCLUSION_REASONS}
    rows: list[dict[str, Any]] = []
    try:
        for sid, source in physionet.by_patient(studies):
            if advance is not None:
                advance(1)
            row, reason = _study_row(sid, source, views, reports, rexrank)
            if reason is not None:
                excluded[reason] += 1
                continue
            rows.append(row)
        sources = physionet.source_files(copy, reports)
    finally:
        reports.close()
    mismatches, differences = _differences(rows, rexrank)
    official = not mismatches and not differences
    if not official and check_counts:
        problems = mismatches + differences
        raise DataError(f"the prepared ReXrank MIMIC-CXR set differs from ReXrank's: {'; '.join(problems[:20])}"
                        f"{f' … ({len(problems)} in all)' if len(problems) > 20 else ''}. Use the unmodified PhysioNet "
                        f"files, or prepare with count checks off (the result is then marked non-official)")
    if rexrank_json is not None:
        sources[REXRANK_JSON] = sha256_file(Path(rexrank_json))
    source_name = SOURCE_REXRANK_JSON if rexrank is not None else SOURCE_PHYSIONET
    header = _header(copy, sources, source_name, official, mismatches + differences[:5])
    manifest_path = write_manifest_dir(out_dir, header, {SPLIT: rows},
                                       split_extra={SPLIT: {"source_studies": len(studies), "excluded": excluded}})
    return RexrankPrepareReport(out_dir=out_dir, manifest_path=manifest_path, official=official,
                                studies_in_split=len(studies), included=len(rows),
                                included_images=sum(len(r["images"]) for r in rows), excluded=excluded,
                                reference_source=source_name, count_mismatches=mismatches, json_differences=differences)


def _study_row(sid: str, source: physionet.SourceStudy, views: dict[str, str], reports: physionet.Reports,
               rexrank: dict[str, dict[str, Any]] | None) -> tuple[dict[str, Any], str | None]:
    text, reason = reports.selected(source.subject, sid)
    if text is None:
        return {}, reason
    findings = physionet.collapse(findings_section(text))
    if findings is None:
        return {}, "no_findings"
    impression = physionet.collapse(impression_section(text))
    if rexrank is not None and sid in rexrank:
        findings, impression = rexrank[sid]["section_findings"], rexrank[sid].get("section_impression")
    dicoms = sorted(source.dicoms)
    frontal = [d for d in dicoms if views.get(d) in physionet.FRONTAL_VIEWS]
    reference = policy.ground_truth(findings, impression)
    findings_text = policy.reference_text(policy.FINDINGS, findings, impression) or ""
    return {
        "study_id": sid,
        "subject_id": source.subject,
        "images": [physionet.image_relpath(source.subject, sid, d) for d in dicoms],
        "views": [views.get(d, "") for d in dicoms],
        "frontal": physionet.image_relpath(source.subject, sid, frontal[-1]) if frontal else None,
        "reference_sha256": sha256_text(reference),
        "findings_sha256": sha256_text(findings_text),
        "reference": reference,
        "findings": findings_text,
    }, None


def _differences(rows: list[dict[str, Any]], rexrank: dict[str, dict[str, Any]] | None) -> tuple[list[str], list[str]]:
    """How the selection differs from ReXrank's published counts and, given its JSON, its study set."""
    got = {"studies": len(rows), "images": sum(len(r["images"]) for r in rows)}
    mismatches = count_mismatches(got, split_counts(committed_manifest(NAME).split(SPLIT)), "ReXrank: ")
    differences: list[str] = []
    if rexrank is not None:
        ours = {r["study_id"] for r in rows}
        differences += [f"{sid}: in {REXRANK_JSON}, not selected from PhysioNet" for sid in rexrank if sid not in ours]
        differences += [f"{sid}: selected from PhysioNet, not in {REXRANK_JSON}" for sid in sorted(ours - set(rexrank))]
    return mismatches, differences


def _header(copy: physionet.PhysioNetCopy, sources: dict[str, str], source_name: str, official: bool,
            problems: list[str]) -> dict[str, Any]:
    committed = committed_manifest(NAME)
    description = "Locally prepared from the user's PhysioNet copy; never commit or share this folder (PhysioNet DUA)."
    return {
        **prepared_header(committed, description, official),
        "reference_source": source_name,
        "view_policy": committed.view_policy,
        "sources": [{"file": f, "sha256": h} for f, h in sources.items()],
        "physionet_root": str(copy.root),
        "image_root": str(copy.image_root),
        "count_check": count_check(problems),
    }


# ----------------------------------------------------------------------------- datasets


class MimicCxrRexrank(PreparedDataset):
    """ReXrank's MIMIC-CXR test set, "Findings: … Impression: …" — from the locally prepared folder."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "MIMIC-CXR test as ReXrank scores it (2,347 studies with findings), prepared locally"
    splits: ClassVar[tuple[str, ...]] = (SPLIT,)
    reference_policy: ClassVar[str] = policy.FINDINGS_IMPRESSION
    manifest_name: ClassVar[str] = NAME
    prepared_subdir: ClassVar[Path] = PREPARED_SUBDIR
    how_to_get: ClassVar[str] = HOW_TO_GET
    prepare_command: ClassVar[str] = NAME
    row_meta: ClassVar[tuple[str, ...]] = ("subject_id",)
    manifest_meta: ClassVar[tuple[str, ...]] = ("reference_source",)

    def _summary(self, prepared: Manifest) -> str:
        return f"{super()._summary(prepared)}, references from {prepared.data.get('reference_source')}"


class MimicCxrRexrankFindings(MimicCxrRexrank):
    """The same studies scored against the findings section alone (ReXrank's findings-only track)."""

    name: ClassVar[str] = FINDINGS_NAME
    description: ClassVar[str] = "MIMIC-CXR test as ReXrank scores it (2,347 studies), findings only, prepared locally"
    reference_policy: ClassVar[str] = policy.FINDINGS
    text_key: ClassVar[str] = "findings"
    hash_key: ClassVar[str] = policy.HASH_KEYS[policy.FINDINGS]


class MimicCxrRexrankPreparer(Preparer):
    """Build ``mimic_cxr/rexrank`` (ReXrank's 2,347 test studies) from a PhysioNet copy."""

    subdir = PREPARED_SUBDIR.as_posix()
    options = {"rexrank_json": "use ReXrank's own reference text from this JSON (study sets must agree)"}

    def prepare(self, request: PrepareRequest) -> RexrankPrepareReport:
        json_path = request.options.get("rexrank_json")
        return prepare_mimic_cxr_rexrank(request.source, request.output_dir,
                                         rexrank_json=Path(json_path) if json_path else None,
                                         check_counts=request.check_counts, progress=request.progress)
