"""MIMIC-CXR as ReXrank evaluates it: the 2,347 official test studies with a findings section.

MIMIC-CXR is credentialed (PhysioNet DUA): nothing study-specific is committed. The committed
manifest (data_manifests/mimic_cxr/rexrank) holds policies and ReXrank's published counts;
``prepare_mimic_cxr_rexrank`` builds the study list and references from the user's PhysioNet
copy (the same files, section rules and helpers as ``mimic_cxr/official``) into
``<data root>/mimic_cxr/rexrank``.

Selection: every study of the official ``test`` split whose report exists, is not one of the
54 hand-sectioned reports, and has a non-empty findings section (MIT-LCP rules). ReXrank
publishes 2,347 studies / 3,858 images for this set; preparation checks those counts.

References (``bench.datasets.rexrank_policy``): ``mimic_cxr/rexrank`` = "Findings: … Impression:
…" (a missing impression is the word ``None``), ``mimic_cxr/rexrank/findings`` = findings only.
Text source, recorded in the prepared manifest:

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

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.preparer import PrepareRequest, Preparer
from rrg_bench.datasets import rexrank_policy as policy
from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.datasets.mimic_cxr import (
    FRONTAL_VIEWS,
    METADATA_CSV,
    REPORTS_ZIP,
    SPLIT_CSV,
    find_file,
    image_relpath,
    locate_reports,
    read_split,
    read_views,
)
from rrg_bench.datasets.mimic_sections import CUSTOM_RULE_STUDIES, findings_section, impression_section
from rrg_bench.errors import DataError
from rrg_bench.manifests import (
    Manifest,
    Progress,
    load_manifest,
    load_manifest_dir,
    mismatch_error,
    sha256_file,
    sha256_text,
    write_manifest_dir,
)
from rrg_bench.api.types import Study

NAME = "mimic_cxr/rexrank"
FINDINGS_NAME = "mimic_cxr/rexrank/findings"
SPLIT = "test"
PREPARED_SUBDIR = Path("mimic_cxr") / "rexrank"
REXRANK_JSON = "ReXRank_MIMICCXR_test.json"
EXCLUSION_REASONS = ("no_report", "custom_rule_report", "no_findings")
SOURCE_PHYSIONET = "physionet"
SOURCE_REXRANK_JSON = "rexrank_json"

HOW_TO_GET = (
    "MIMIC-CXR is credentialed data: get MIMIC-CXR-JPG 2.0.0 (mimic-cxr-2.0.0-split.csv.gz, "
    "mimic-cxr-2.0.0-metadata.csv.gz, files/) and the MIMIC-CXR reports (mimic-cxr-reports.zip or the "
    "files/p1X/p<subject>/s<study>.txt tree) from physionet.org, then build the ReXrank test set with "
    "bench.datasets.mimic_cxr_rexrank.prepare_mimic_cxr_rexrank(PHYSIONET_DIR, DATA_ROOT/mimic_cxr/rexrank) "
    "(optionally with ReXrank's ReXRank_MIMICCXR_test.json for ReXrank's exact reference text). "
    "Point the harness at the data root with --data-root DATA_ROOT or BENCH_DATA_ROOT."
)


@functools.lru_cache(maxsize=1)
def committed_manifest() -> Manifest:
    """Policies and ReXrank's published counts; no ids, no text."""
    return load_manifest(NAME)


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


def refuse_repository_target(out_dir: Path) -> None:
    """Credentialed text must never land in a git working tree (it could be committed)."""
    repo = next((p for p in (out_dir, *out_dir.parents) if (p / ".git").exists()), None)
    if repo is not None:
        raise DataError(
            f"refusing to write report text to {out_dir}: it is inside the git working tree {repo}, "
            f"and the data use agreement forbids sharing the text. Choose a data root outside any repository")


def _collapse(text: str | None) -> str | None:
    collapsed = " ".join(text.split()) if text is not None else ""
    return collapsed or None


def _last_frontal(dicoms: list[str], views: dict[str, str]) -> str | None:
    frontal = [d for d in dicoms if views.get(d) in FRONTAL_VIEWS]
    return frontal[-1] if frontal else None


def _read_rexrank_json(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as ReXrank's MIMIC-CXR JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "section_findings" in v for v in data.values()):
        raise DataError(f"{path}: expected ReXrank's object keyed by study id with section_findings per study")
    return data


def prepare_mimic_cxr_rexrank(physionet_root: Path, out_dir: Path, *, rexrank_json: Path | None = None,
                              check_counts: bool = True, progress: Progress | None = None) -> RexrankPrepareReport:
    """Build the local ``mimic_cxr/rexrank`` study list and references from a PhysioNet copy.

    ``physionet_root`` as for ``prepare_mimic_cxr``. With ``rexrank_json`` the reference text
    is ReXrank's own (the study sets must agree). Raises ``DataError`` on missing or malformed
    inputs, and (with ``check_counts``) when the counts differ from ReXrank's 2,347 studies /
    3,858 images or from the JSON's study set; with ``check_counts=False`` the result is
    prepared but marked ``official: false``.
    """
    physionet_root, out_dir = Path(physionet_root).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if not physionet_root.is_dir():
        raise DataError(f"PhysioNet root {physionet_root} does not exist. {HOW_TO_GET}")
    refuse_repository_target(out_dir)
    split_csv, metadata_csv = find_file(physionet_root, SPLIT_CSV), find_file(physionet_root, METADATA_CSV)
    absent = [n for n, p in ((SPLIT_CSV, split_csv), (METADATA_CSV, metadata_csv)) if p is None]
    if absent:
        raise DataError(f"{', '.join(absent)} not found under {physionet_root}. {HOW_TO_GET}")
    assert split_csv is not None and metadata_csv is not None
    studies = read_split(split_csv)[SPLIT]
    views = read_views(metadata_csv, {d for s in studies.values() for d in s.dicoms})
    rexrank = _read_rexrank_json(rexrank_json) if rexrank_json is not None else None
    reports = locate_reports(physionet_root, [(s.subject, sid) for sid, s in list(studies.items())[:50]])
    advance = progress("sectioning MIMIC-CXR test reports", len(studies)) if progress is not None else None
    excluded = {r: 0 for r in EXCLUSION_REASONS}
    rows: list[dict[str, Any]] = []
    try:
        for sid, source in sorted(studies.items(), key=lambda kv: (int(kv[1].subject), int(kv[0]))):
            if advance is not None:
                advance(1)
            text = reports.read(source.subject, sid)
            if text is None:
                excluded["no_report"] += 1
                continue
            if f"s{sid}" in CUSTOM_RULE_STUDIES:
                excluded["custom_rule_report"] += 1
                continue
            findings = _collapse(findings_section(text))
            if findings is None:
                excluded["no_findings"] += 1
                continue
            impression = _collapse(impression_section(text))
            if rexrank is not None and sid in rexrank:
                findings, impression = rexrank[sid]["section_findings"], rexrank[sid].get("section_impression")
            dicoms = sorted(source.dicoms)
            frontal = _last_frontal(dicoms, views)
            reference = policy.ground_truth(findings, impression)
            findings_text = policy.reference_text(policy.FINDINGS, findings, impression) or ""
            rows.append({
                "study_id": sid,
                "subject_id": source.subject,
                "images": [image_relpath(source.subject, sid, d) for d in dicoms],
                "views": [views.get(d, "") for d in dicoms],
                "frontal": image_relpath(source.subject, sid, frontal) if frontal else None,
                "reference_sha256": sha256_text(reference),
                "findings_sha256": sha256_text(findings_text),
                "reference": reference,
                "findings": findings_text,
            })
        reports_source = {"file": REPORTS_ZIP if reports.zip_path is not None
                          else "reports_tree (digest of the reports read)", "sha256": reports.sha256()}
    finally:
        reports.close()

    committed = committed_manifest()
    expected = committed.split(SPLIT)
    n_images = sum(len(r["images"]) for r in rows)
    mismatches = [f"{got:,} {what} (ReXrank: {want:,})"
                  for what, got, want in (("studies", len(rows), expected.studies), ("images", n_images, expected.images))
                  if got != want]
    differences: list[str] = []
    if rexrank is not None:
        ours = {r["study_id"] for r in rows}
        differences += [f"{sid}: in {REXRANK_JSON}, not selected from PhysioNet" for sid in rexrank if sid not in ours]
        differences += [f"{sid}: selected from PhysioNet, not in {REXRANK_JSON}" for sid in sorted(ours - set(rexrank))]
    official = not mismatches and not differences
    if not official and check_counts:
        problems = mismatches + differences
        raise DataError(f"the prepared ReXrank MIMIC-CXR set differs from ReXrank's: {'; '.join(problems[:20])}"
                        f"{f' … ({len(problems)} in all)' if len(problems) > 20 else ''}. Use the unmodified PhysioNet "
                        f"files, or prepare with count checks off (the result is then marked non-official)")
    source_name = SOURCE_REXRANK_JSON if rexrank is not None else SOURCE_PHYSIONET
    sources = [{"file": SPLIT_CSV, "sha256": sha256_file(split_csv)},
               {"file": METADATA_CSV, "sha256": sha256_file(metadata_csv)}, reports_source]
    if rexrank_json is not None:
        sources.append({"file": REXRANK_JSON, "sha256": sha256_file(Path(rexrank_json))})
    header = {
        "name": NAME,
        "version": committed.version,
        "description": "Locally prepared from the user's PhysioNet copy; never commit or share this folder (PhysioNet DUA).",
        "official": official,
        "committed_manifest_sha256": committed.sha256,
        "reference_policy": committed.reference_policy,
        "reference_source": source_name,
        "view_policy": committed.view_policy,
        "sources": sources,
        "physionet_root": str(physionet_root),
        "image_root": str(split_csv.parent),
        "count_check": "passed" if official else "failed (check_counts=False): " + "; ".join(mismatches + differences[:5]),
    }
    split_extra = {SPLIT: {"source_studies": len(studies), "excluded": excluded}}
    manifest_path = write_manifest_dir(out_dir, header, {SPLIT: rows}, split_extra=split_extra)
    return RexrankPrepareReport(out_dir=out_dir, manifest_path=manifest_path, official=official,
                                studies_in_split=len(studies), included=len(rows), included_images=n_images,
                                excluded=excluded, reference_source=source_name, count_mismatches=mismatches,
                                json_differences=differences)


# ----------------------------------------------------------------------------- datasets


class MimicCxrRexrank(Dataset):
    """ReXrank's MIMIC-CXR test set, "Findings: … Impression: …" — from the locally prepared folder."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "MIMIC-CXR test as ReXrank scores it (2,347 studies with findings), prepared locally"
    splits: ClassVar[tuple[str, ...]] = (SPLIT,)
    reference_policy: ClassVar[str] = policy.FINDINGS_IMPRESSION
    #: the prepared row field holding this policy's text
    text_key: ClassVar[str] = "reference"

    def root(self) -> Path:
        if self.data_root is None:
            raise DataError(f"{self.name}: no data root given. {HOW_TO_GET}")
        for candidate in (self.data_root / PREPARED_SUBDIR, self.data_root):
            if (candidate / "manifest.yaml").is_file() and load_manifest_dir(candidate).name == NAME:
                return candidate
        raise DataError(f"{self.name}: not prepared: no {NAME} manifest.yaml in {self.data_root / PREPARED_SUBDIR}. "
                        f"{HOW_TO_GET}")

    @functools.cached_property
    def prepared(self) -> Manifest:
        root = self.root()
        manifest = load_manifest_dir(root)
        committed = committed_manifest()
        if manifest.version != committed.version or manifest.data.get("committed_manifest_sha256") != committed.sha256:
            raise DataError(f"{root} was prepared for another version of {NAME}; prepare it again")
        return manifest

    def _check_split(self, split: str) -> None:
        if split != SPLIT:
            raise DataError(f"{self.name} has only the split {SPLIT!r}; got {split!r}")

    def _problems(self) -> list[str]:
        key = policy.HASH_KEYS[self.reference_policy]
        return [f"{row['study_id']}: reference sha256 differs" for row in self.prepared.rows(SPLIT)
                if sha256_text(str(row.get(self.text_key, ""))) != row[key]]

    def studies(self, split: str) -> list[Study]:
        self._check_split(split)
        rows = self.prepared.rows(SPLIT)
        problems = self._problems()
        if problems:
            raise mismatch_error(self.name, split, len(rows), problems, f"prepared data in {self.root()}",
                                 "Prepare the data again")
        image_root = Path(self.prepared.data["image_root"])
        official = bool(self.prepared.data.get("official"))
        key = policy.HASH_KEYS[self.reference_policy]
        return [Study(
            study_id=row["study_id"], split=split, reference=row[self.text_key], reference_sha256=row[key],
            image_paths=tuple(image_root / p for p in row["images"]),
            frontal_image=image_root / row["frontal"] if row["frontal"] else None,
            meta={"subject_id": row["subject_id"], "views": tuple(row["views"]), "official": official,
                  "reference_source": self.prepared.data.get("reference_source")},
        ) for row in rows]

    def verify(self) -> VerifyReport:
        report = VerifyReport(dataset=self.name, data_root=self.data_root, ok=False, how_to_get=HOW_TO_GET)
        try:
            prepared = self.prepared
            rows = prepared.rows(SPLIT)
        except DataError as exc:
            report.missing.append(str(exc))
            return report
        report.present.append(f"prepared data: {self.root()} (official: {bool(prepared.data.get('official'))}, "
                              f"references from {prepared.data.get('reference_source')})")
        if not prepared.data.get("official"):
            report.mismatched.append(f"differs from ReXrank's set: {prepared.data.get('count_check')}")
        problems = self._problems()
        report.mismatched += [f"{SPLIT}/{p}" for p in problems]
        if not problems:
            report.present.append(f"{SPLIT}: {len(rows)} references match the prepared manifest")
        report.ok = not report.mismatched
        return report

    def identity(self, split: str) -> dict[str, Any]:
        """Committed policies always; ids and reference hashes once the data is prepared."""
        self._check_split(split)
        committed = committed_manifest()
        block: dict[str, Any] = {
            "name": self.name, "manifest_version": committed.version, "manifest_sha256": committed.sha256,
            "split": split, "reference_policy": self.reference_policy, "n_expected": None,
            "study_ids_sha256": None, "references_sha256": None, "prepared_manifest_sha256": None,
            "official": None, "reference_source": None,
        }
        try:
            prepared = self.prepared
        except DataError:
            return block
        block.update(policy.identity(prepared, prepared.rows(SPLIT), name=self.name, split=split,
                                     policy=self.reference_policy))
        block.update({"manifest_sha256": committed.sha256, "prepared_manifest_sha256": prepared.sha256,
                      "official": bool(prepared.data.get("official")),
                      "reference_source": prepared.data.get("reference_source")})
        return block


class MimicCxrRexrankFindings(MimicCxrRexrank):
    """The same studies scored against the findings section alone (ReXrank's findings-only track)."""

    name: ClassVar[str] = FINDINGS_NAME
    description: ClassVar[str] = "MIMIC-CXR test as ReXrank scores it (2,347 studies), findings only, prepared locally"
    reference_policy: ClassVar[str] = policy.FINDINGS
    text_key: ClassVar[str] = "findings"


class MimicCxrRexrankPreparer(Preparer):
    """Build ``mimic_cxr/rexrank`` (ReXrank's 2,347 test studies) from a PhysioNet copy."""

    subdir = PREPARED_SUBDIR.as_posix()
    options = {"rexrank_json": "use ReXrank's own reference text from this JSON (study sets must agree)"}

    def prepare(self, request: PrepareRequest) -> RexrankPrepareReport:
        json_path = request.options.get("rexrank_json")
        return prepare_mimic_cxr_rexrank(request.source, request.output_dir,
                                         rexrank_json=Path(json_path) if json_path else None,
                                         check_counts=request.check_counts, progress=request.progress)
