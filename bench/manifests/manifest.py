"""Loading a manifest and reading its split files, each checked against the hashes it names.

Why every read is checked: a manifest is what a score claims to be computed against; a split
file whose bytes, count or rows differ from ``manifest.yaml`` must fail before anything is
scored, naming the file and line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.errors import DataError, UsageError
from rrg_bench.hashing import sha256_bytes
from rrg_bench.manifests.identity import identity_block

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only the annotation needs it
    from importlib.resources.abc import Traversable

#: package that holds the committed manifests (one folder per dataset name)
MANIFEST_PACKAGE = "rrg_bench.data_manifests"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SplitInfo:
    name: str
    studies: int
    images: int | None
    jsonl_sha256: str | None  # None: the manifest holds policies and counts only (MIMIC)


@dataclass
class Manifest:
    """A loaded ``manifest.yaml``; ``rows(split)`` reads and verifies a split file on demand."""

    name: str
    version: str
    description: str
    reference_policy: str
    view_policy: str
    sources: list[dict[str, Any]]
    splits: dict[str, SplitInfo]
    exclusions: dict[str, Any]
    data: dict[str, Any]
    sha256: str  # of manifest.yaml's bytes; covers the split files through their hashes
    location: str  # where it was read from, for messages
    directory: Traversable | Path
    _rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def split(self, split: str) -> SplitInfo:
        if split not in self.splits:
            raise UsageError(f"{self.name} has no split {split!r}; splits: {', '.join(self.splits)}")
        return self.splits[split]

    def has_rows(self, split: str) -> bool:
        return self.split(split).jsonl_sha256 is not None

    def rows(self, split: str) -> list[dict[str, Any]]:
        """The split's study rows, after checking the file's sha256, the count and each row."""
        if split in self._rows:
            return self._rows[split]
        info = self.split(split)
        if info.jsonl_sha256 is None:
            raise DataError(
                f"{self.name}: the manifest at {self.location} lists no studies for {split!r} "
                f"(it holds policies and counts only; the study list is built locally)"
            )
        file = self.directory.joinpath(f"{split}.jsonl")
        where = f"{self.location}/{split}.jsonl"
        try:
            raw = file.read_bytes()
        except (FileNotFoundError, OSError) as exc:
            raise DataError(f"{self.name}: manifest file {where} is missing ({type(exc).__name__})") from None
        got = sha256_bytes(raw)
        if got != info.jsonl_sha256:
            raise DataError(
                f"{self.name}: {where} has sha256 {got[:12]}…, manifest.yaml says {info.jsonl_sha256[:12]}…; "
                f"the manifest was modified — reinstall rrg-bench or re-run its builder"
            )
        rows = parse_rows(raw, where)
        if len(rows) != info.studies:
            raise DataError(f"{self.name}: {where} has {len(rows)} studies, manifest.yaml says {info.studies}")
        self._rows[split] = rows
        return rows

    def identity(self, split: str) -> dict[str, Any]:
        """The record's ``dataset`` block for a manifest that lists its studies."""
        return identity_block(self, split, self.rows(split))


def parse_rows(raw: bytes, where: str) -> list[dict[str, Any]]:
    """Parse a split jsonl; every row needs a unique ``study_id`` and a 64-hex ``reference_sha256``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise DataError(f"{where}:{lineno}: empty line")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}:{lineno}: expected a JSON object")
        sid = row.get("study_id")
        if not isinstance(sid, str) or not sid:
            raise DataError(f"{where}:{lineno}: missing or empty 'study_id'")
        if not isinstance(row.get("reference_sha256"), str) or not _SHA256.match(row["reference_sha256"]):
            raise DataError(f"{where}:{lineno}: study {sid}: 'reference_sha256' is not a sha256 hex digest")
        if sid in seen:
            raise DataError(f"{where}:{lineno}: duplicate study_id {sid} (first on line {seen[sid]})")
        seen[sid] = lineno
        rows.append(row)
    return rows


def packaged_manifest_dir(name: str) -> Traversable:
    """The folder of the committed manifest ``name`` (e.g. ``"iu_xray/r2gen"``) inside the wheel."""
    parts = [p for p in name.split("/") if p]
    if not parts or any(not re.fullmatch(r"[A-Za-z0-9_]+", p) for p in parts):
        raise UsageError(f"malformed dataset name {name!r}")
    return resources.files(MANIFEST_PACKAGE).joinpath(*parts)


def load_manifest(name: str) -> Manifest:
    """Load the committed manifest of dataset ``name`` from the ``data_manifests`` package."""
    directory = packaged_manifest_dir(name)
    return load_manifest_dir(directory, location=f"{MANIFEST_PACKAGE}/{name}")


def load_manifest_dir(directory: Traversable | Path, location: str | None = None) -> Manifest:
    """Load ``manifest.yaml`` from ``directory`` (a package folder or a local path)."""
    import yaml

    where = location or str(directory)
    file = directory.joinpath("manifest.yaml")
    try:
        raw = file.read_bytes()
    except (FileNotFoundError, OSError):
        raise DataError(f"no manifest.yaml in {where}") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}/manifest.yaml is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{where}/manifest.yaml: expected a mapping at the top level")
    missing = [k for k in ("name", "version", "reference_policy", "splits") if k not in data]
    if missing:
        raise DataError(f"{where}/manifest.yaml: missing key(s) {', '.join(missing)}")
    splits: dict[str, SplitInfo] = {}
    for split, info in (data.get("splits") or {}).items():
        if not isinstance(info, dict) or not isinstance(info.get("studies"), int):
            raise DataError(f"{where}/manifest.yaml: split {split!r} needs an integer 'studies' count")
        splits[str(split)] = SplitInfo(str(split), info["studies"], info.get("images"), info.get("jsonl_sha256"))
    return Manifest(
        name=str(data["name"]),
        version=str(data["version"]),
        description=str(data.get("description", "")).strip(),
        reference_policy=str(data["reference_policy"]),
        view_policy=str(data.get("view_policy", "")).strip(),
        sources=list(data.get("sources") or []),
        splits=splits,
        exclusions=dict(data.get("exclusions") or {}),
        data=data,
        sha256=sha256_bytes(raw),
        location=where,
        directory=directory,
    )
