"""Dataset manifests: the frozen list of studies a score is computed against.

A manifest directory holds ``manifest.yaml`` (name, version, sources and their sha256,
reference and view policies, per-split counts, exclusion counts, and the sha256 of every
split file) plus one ``<split>.jsonl`` per split (one study per line: ``study_id``, image
paths relative to the data root, the frontal image, ``reference_sha256`` and
dataset-specific keys). The committed manifests ship inside the wheel as the
``data_manifests`` package, so an installed ``bench`` works outside the checkout.

Why hashes and not text: credentialed reports (MIMIC) may never be redistributed, and even
for open data the hash is what makes "the same references" checkable. Loading a split
verifies the split file's sha256 and its count, so an edited manifest fails loudly.

Hashing convention (``sha256_text``): the sha256 of the UTF-8 bytes of the text exactly as
the dataset's reference policy produces it. No normalisation happens inside the hash (no
strip, no Unicode normalisation, no newline conversion); a policy that wants normalised
text normalises before hashing, and says so in its card.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from rrg_bench.errors import DataError, UsageError
from rrg_bench.hashing import canonical_json as canonical_json  # re-exported
from rrg_bench.hashing import sha256_file as sha256_file
from rrg_bench.hashing import sha256_text as sha256_text

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only the annotation needs it
    from importlib.resources.abc import Traversable

#: schema tag written into every manifest.yaml this module writes
MANIFEST_SCHEMA = "bench.manifest/1"

#: package that holds the committed manifests (one folder per dataset name)
MANIFEST_PACKAGE = "rrg_bench.data_manifests"

#: ``progress(description, total) -> advance``; ``advance(n)`` marks n more items done. The
#: same protocol as ``bench.progress.ProgressReporter.task``; library code never prints.
Progress = Callable[[str, int], Callable[[int], Any]]

#: how many differing studies an error message names before it only counts
MAX_NAMED = 20

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ----------------------------------------------------------------------------- hashing


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ``sha256_text`` (UTF-8 bytes of the text, exactly as given), ``sha256_file`` and
# ``canonical_json`` (sorted keys, no spaces, UTF-8 kept) come from bench.fingerprint and are
# re-exported here, so manifests and run fingerprints hash the same way.


def references_sha256(pairs: Iterable[tuple[str, str]]) -> str:
    """sha256 of the canonical JSON of the ordered ``[[study_id, reference_sha256], ...]`` list.

    Order matters on purpose: it is the split's order, the order predictions are reported in.
    """
    return sha256_text(canonical_json([[sid, ref] for sid, ref in pairs]))


def study_ids_sha256(study_ids: Iterable[str]) -> str:
    """sha256 of the canonical JSON of the ordered list of study ids."""
    return sha256_text(canonical_json(list(study_ids)))


# ----------------------------------------------------------------------------- errors


def name_some(items: Sequence[str], limit: int = MAX_NAMED) -> str:
    """``"a; b; c"`` for the first ``limit`` items, then ``"; ... (N more)"``."""
    shown = "; ".join(items[:limit])
    rest = len(items) - limit
    return shown + (f"; ... ({rest} more)" if rest > 0 else "")


def mismatch_error(dataset: str, split: str, n_total: int, problems: Sequence[str], where: str, hint: str = "") -> DataError:
    """One-line ``DataError`` naming the first differing studies and how many differ."""
    message = (
        f"{dataset} {split}: {len(problems)} of {n_total} studies differ from the manifest ({where}): "
        f"{name_some(problems)}"
    )
    return DataError(message + (f". {hint}" if hint else ""))


# ----------------------------------------------------------------------------- manifest


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
        rows = self.rows(split)
        return {
            "name": self.name,
            "manifest_version": self.version,
            "manifest_sha256": self.sha256,
            "split": split,
            "reference_policy": self.reference_policy,
            "n_expected": len(rows),
            "study_ids_sha256": study_ids_sha256(r["study_id"] for r in rows),
            "references_sha256": references_sha256((r["study_id"], r["reference_sha256"]) for r in rows),
        }


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


# ----------------------------------------------------------------------------- writing


def jsonl_bytes(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """One compact JSON object per line, keys in the given order, UTF-8, ``\\n`` endings."""
    return "".join(json.dumps(dict(r), ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")


def yaml_bytes(data: Mapping[str, Any]) -> bytes:
    import yaml

    text = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return text.encode("utf-8")


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file + ``os.replace`` so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_manifest_dir(
    out_dir: Path,
    header: Mapping[str, Any],
    rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    split_extra: Mapping[str, Mapping[str, Any]] | None = None,
    trailer: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<split>.jsonl`` files and then ``manifest.yaml`` (last, so it names complete files).

    ``header`` keys come first in manifest.yaml, then ``splits`` (studies, images, jsonl
    sha256 and ``split_extra``), then ``trailer``. Output depends only on the inputs, so a
    builder re-run reproduces the committed bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    splits: dict[str, Any] = {}
    for split, rows in rows_by_split.items():
        data = jsonl_bytes(rows)
        atomic_write(out_dir / f"{split}.jsonl", data)
        info: dict[str, Any] = {
            "studies": len(rows),
            "images": sum(len(r.get("images", ())) for r in rows),
            "jsonl_sha256": sha256_bytes(data),
        }
        info.update((split_extra or {}).get(split, {}))
        splits[split] = info
    manifest = {"schema": MANIFEST_SCHEMA, **header, "splits": splits, **(trailer or {})}
    path = out_dir / "manifest.yaml"
    atomic_write(path, yaml_bytes(manifest))
    return path


# ----------------------------------------------------------------------------- data roots


def find_dataset_root(data_root: Path | None, subdirs: Sequence[str], markers: Sequence[str]) -> Path | None:
    """``data_root`` itself or ``data_root/<subdir>`` — whichever holds one of ``markers``.

    One ``BENCH_DATA_ROOT`` can hold every dataset (``<root>/iu_xray``, ``<root>/mimic_cxr/official``)
    or point straight at one dataset's folder; both work.
    """
    if data_root is None:
        return None
    for candidate in (data_root, *(data_root / s for s in subdirs)):
        if any((candidate / m).exists() for m in markers):
            return candidate
    return None
