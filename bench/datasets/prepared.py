"""Datasets built locally from credentialed data (MIMIC-CXR, CheXpert Plus): what their preparers
write and how the datasets read it back.

Why one module: no id or word of these datasets may be committed, so each has the same shape —
a committed manifest with policies and published counts, a preparer that writes the study list
and references into the user's data root (never into a repository), and a dataset that checks
the prepared folder against the committed manifest and every reference against its hash.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.api.types import Study
from rrg_bench.datasets.base import committed_manifest, note_missing
from rrg_bench.errors import DataError
from rrg_bench.manifests import Manifest, SplitInfo, identity_block, load_manifest_dir, mismatch_error, sha256_text

# ----------------------------------------------------------------------------- preparing

_PATIENT_DIR = re.compile(r"^[ps]\d+$")  # p10, p10000032, s50414267: MIMIC's big per-patient tree


def subdirs(directory: Path) -> list[Path]:
    """The sub-folders worth searching, in name order (never MIMIC's per-patient folders)."""
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not _PATIENT_DIR.match(p.name))
    except OSError:
        return []


def find_file(root: Path, name: str, max_depth: int = 5) -> Path | None:
    """``root/name`` or the shallowest ``name`` below ``root``: users unpack downloads at any depth."""
    level = [root]
    for _ in range(max_depth + 1):
        for directory in level:
            if (directory / name).is_file():
                return directory / name
        level = [child for directory in level for child in subdirs(directory)]
    return None


def refuse_repository_target(out_dir: Path, text: str = "report text",
                             agreement: str = "the data use agreement") -> None:
    """Credentialed text must never land in a git working tree (it could be committed)."""
    repo = next((p for p in (out_dir, *out_dir.parents) if (p / ".git").exists()), None)
    if repo is not None:
        raise DataError(
            f"refusing to write {text} to {out_dir}: it is inside the git working tree {repo}, "
            f"and {agreement} forbids sharing the text. Choose a data root outside any repository")


def split_counts(info: SplitInfo) -> dict[str, int]:
    """A committed split's published study and image counts, as ``count_mismatches`` compares them."""
    return {"studies": info.studies, "images": int(info.images or 0)}


def count_mismatches(got: Mapping[str, int], want: Mapping[str, int], label: str, prefix: str = "") -> list[str]:
    """``"<prefix><got> studies (<label><want>)"`` for each of studies/images whose count differs."""
    return [f"{prefix}{got[what]:,} {what} ({label}{want[what]:,})" for what in ("studies", "images")
            if got[what] != want[what]]


def count_check(problems: Sequence[str]) -> str:
    """The prepared manifest's ``count_check``: ``passed``, or why the data is not official."""
    return "passed" if not problems else "failed (check_counts=False): " + "; ".join(problems)


def prepared_header(committed: Manifest, description: str, official: bool) -> dict[str, Any]:
    """The first keys of a prepared manifest.yaml; the caller appends its own in order.

    ``committed_manifest_sha256`` ties the prepared folder to the committed manifest it was
    prepared for; the dataset refuses a folder prepared for another one.
    """
    return {
        "name": committed.name,
        "version": committed.version,
        "description": description,
        "official": official,
        "committed_manifest_sha256": committed.sha256,
        "reference_policy": committed.reference_policy,
    }


# ----------------------------------------------------------------------------- reading back


class PreparedDataset(Dataset):
    """A dataset read from ``<data root>/<prepared_subdir>``, as its preparer wrote it."""

    #: the committed manifest (a findings-only variant shares its parent's)
    manifest_name: ClassVar[str]
    prepared_subdir: ClassVar[Path]
    #: further folders below the data root where a prepared copy is accepted
    other_subdirs: ClassVar[tuple[str, ...]] = ()
    how_to_get: ClassVar[str]
    #: ``bench data prepare <this>`` rebuilds the folder
    prepare_command: ClassVar[str]
    #: the prepared row fields holding this dataset's reference text and its sha256
    text_key: ClassVar[str] = "reference"
    hash_key: ClassVar[str] = "reference_sha256"
    #: row fields copied into ``Study.meta`` (besides views and official)
    row_meta: ClassVar[tuple[str, ...]] = ()
    #: prepared manifest.yaml keys copied into ``Study.meta`` and the identity block
    manifest_meta: ClassVar[tuple[str, ...]] = ()
    #: what a non-official prepared copy is reported as by ``verify``
    not_official: ClassVar[str] = "differs from ReXrank's set"
    #: added to the unknown-split message, e.g. where the split comes from
    split_note: ClassVar[str] = ""

    def committed(self) -> Manifest:
        """Policies and published counts; no ids, no text."""
        return committed_manifest(self.manifest_name)

    def root(self) -> Path:
        """The prepared folder: ``<data root>/<prepared_subdir>``, the data root itself, or ``other_subdirs``."""
        if self.data_root is None:
            raise DataError(f"{self.name}: no data root given. {self.how_to_get}")
        candidates = (self.data_root / self.prepared_subdir, self.data_root,
                      *(self.data_root / s for s in self.other_subdirs))
        for candidate in candidates:
            if (candidate / "manifest.yaml").is_file() and load_manifest_dir(candidate).name == self.manifest_name:
                return candidate
        raise DataError(f"{self.name}: not prepared: no {self.manifest_name} manifest.yaml in "
                        f"{self.data_root / self.prepared_subdir}. {self.how_to_get}")

    @functools.cached_property
    def prepared(self) -> Manifest:
        root = self.root()
        manifest = load_manifest_dir(root)
        committed = self.committed()
        prepared_for = manifest.data.get("committed_manifest_sha256")
        if manifest.version != committed.version or prepared_for != committed.sha256:
            raise DataError(
                f"{root} was prepared for {self.manifest_name} manifest v{manifest.version} "
                f"({str(prepared_for)[:12]}…); this rrg-bench has v{committed.version} ({committed.sha256[:12]}…): "
                f"run `bench data prepare {self.prepare_command}` again")
        return manifest

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"{self.name} has only the split {self.splits[0]!r}{self.split_note}; got {split!r}")

    def _problems(self, split: str) -> list[str]:
        return [f"{row['study_id']}: reference sha256 differs" for row in self.prepared.rows(split)
                if sha256_text(str(row.get(self.text_key, ""))) != row[self.hash_key]]

    def _meta(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {**{k: row[k] for k in self.row_meta}, "views": tuple(row["views"]),
                "official": bool(self.prepared.data.get("official")),
                **{k: self.prepared.data.get(k) for k in self.manifest_meta}}

    def studies(self, split: str) -> list[Study]:
        self.check_split(split)
        rows = self.prepared.rows(split)
        problems = self._problems(split)
        if problems:
            raise mismatch_error(self.name, split, len(rows), problems, f"prepared data in {self.root()}",
                                 f"Run `bench data prepare {self.prepare_command}` again")
        image_root = Path(self.prepared.data["image_root"])
        return [Study(
            study_id=row["study_id"], split=split, reference=row[self.text_key], reference_sha256=row[self.hash_key],
            image_paths=tuple(image_root / p for p in row["images"]),
            frontal_image=image_root / row["frontal"] if row["frontal"] else None, meta=self._meta(row),
        ) for row in rows]

    def _summary(self, prepared: Manifest) -> str:
        """The parenthesis after the prepared folder in ``verify``'s first line."""
        return f"official: {bool(prepared.data.get('official'))}"

    def _images_line(self, split: str, rows: list[dict[str, Any]], image_root: Path) -> tuple[str, bool] | None:
        """``verify``'s line on the images of ``split`` and whether all are there; None: no line."""
        return None

    def verify(self) -> VerifyReport:
        report = VerifyReport(dataset=self.name, data_root=self.data_root, ok=False, how_to_get=self.how_to_get)
        try:
            prepared = self.prepared
        except DataError as exc:
            note_missing(report, exc)
            return report
        report.present.append(f"prepared data: {self.root()} ({self._summary(prepared)})")
        if not prepared.data.get("official"):
            report.mismatched.append(f"{self.not_official}: {prepared.data.get('count_check')}")
        for split in self.splits:
            try:
                rows = prepared.rows(split)
            except DataError as exc:
                report.mismatched.append(str(exc))
                continue
            problems = self._problems(split)
            report.mismatched += [f"{split}/{p}" for p in problems]
            if not problems:
                report.present.append(f"{split}: {len(rows)} references match the prepared manifest")
            images = self._images_line(split, rows, Path(prepared.data["image_root"]))
            if images is not None:
                (report.present if images[1] else report.missing).append(images[0])
        report.ok = not report.mismatched
        return report

    def identity(self, split: str) -> dict[str, Any]:
        """Committed policies always; ids and reference hashes once the data is prepared."""
        self.check_split(split)
        committed = self.committed()
        committed.split(split)
        try:
            prepared: Manifest | None = self.prepared
        except DataError:
            prepared = None
        rows = prepared.rows(split) if prepared is not None else None
        block = identity_block(committed, split, rows, name=self.name, reference_policy=self.reference_policy,
                               hash_key=self.hash_key)
        block["prepared_manifest_sha256"] = prepared.sha256 if prepared is not None else None
        block["official"] = bool(prepared.data.get("official")) if prepared is not None else None
        block.update({k: prepared.data.get(k) if prepared is not None else None for k in self.manifest_meta})
        return block
