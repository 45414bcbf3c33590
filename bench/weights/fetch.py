"""The one place that downloads: ``bench weights fetch NAME`` (pinned revision, sha256 checked,
archives extracted safely, a sidecar recording what was fetched) and ``hub_snapshot`` for
generators and encoders that load a whole Hub repository."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rrg_bench.errors import BenchError, UsageError, WeightsUnavailable
from rrg_bench.hashing import sha256_file_memo, sha256_tree
from rrg_bench.weights.locate import default_location, resolve, sidecar_path, weights_dir
from rrg_bench.weights.spec import WeightSpec, spec

Download = Callable[[str, str, "str | None", Path], Path]


def _write_sidecar(name: str, record: dict[str, Any]) -> None:
    path = sidecar_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _check_sha(s: WeightSpec, filename: str, path: Path) -> str:
    got = sha256_file_memo(path)
    want = s.sha256.get(filename)
    if want is not None and got != want:
        raise BenchError(f"{s.name}: {path} has sha256 {got}, expected {want} "
                         f"({s.repo_id}@{s.short_revision}/{filename}); delete it and fetch again")
    return got


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract refusing absolute paths, '..', links out of ``dest`` and device files."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
                return
            for member in tar.getmembers():  # pragma: no cover - Python without extraction filters
                target = (dest / member.name).resolve()
                if not (member.isfile() or member.isdir()) or dest.resolve() not in (target, *target.parents):
                    raise BenchError(f"{archive}: unsafe archive member {member.name!r}")
            tar.extractall(dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BenchError(f"{archive}: cannot extract ({type(exc).__name__}: {exc})") from None


def hub_snapshot(repo_id: str, revision: str | None, *, local_files_only: bool, who: str, fix: str) -> Path:
    """A whole Hub repository (a generator's checkpoint or encoder) as a local snapshot directory.
    ``local_files_only``: the local HF cache only (generation never downloads). Failures name
    ``who`` asked, the repo, the revision and ``fix``."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=repo_id, revision=revision, local_files_only=local_files_only))
    except Exception as exc:  # not installed, offline, gated, unknown revision, not cached: the user's to fix
        where = ("is not in the local Hugging Face cache, so it cannot be loaded offline" if local_files_only
                 else "cannot be fetched from the Hugging Face Hub")
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0]}" if str(exc) else type(exc).__name__
        raise WeightsUnavailable(f"{who} {repo_id!r} (revision {revision or 'main'}) {where} ({reason}). "
                                 f"{fix}") from None


def hf_download(repo_id: str, filename: str, revision: str | None, local_dir: Path) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise WeightsUnavailable("`bench weights fetch` needs huggingface_hub: pip install huggingface_hub") from None
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, local_dir=local_dir))
    except Exception as exc:  # network, offline mode, auth: all mean "cannot fetch here"
        raise WeightsUnavailable(f"could not download {repo_id}@{(revision or 'main')[:12]}/{filename} "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def _resolved_revision(repo_id: str, revision: str | None) -> str | None:
    """The commit a fetch without a pinned revision actually got (recorded in the sidecar)."""
    try:
        from huggingface_hub import HfApi

        return str(HfApi().model_info(repo_id, revision=revision).sha)
    except Exception:  # offline or installed from --from: the sidecar then says "unknown"
        return None


def _stage_files(s: WeightSpec, rev: str | None, source: str | Path | None, staging: Path,
                 download: Download) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for filename in s.files:
        if source is not None:
            src = Path(source).expanduser()
            if not src.is_file():
                raise UsageError(f"{src} does not exist or is not a file")
            got = staging / filename
            shutil.copyfile(src, got)
        else:
            try:
                got = download(s.repo_id, filename, rev, staging)
            except WeightsUnavailable as exc:
                hint = (f"download {filename} elsewhere and run `bench weights fetch {s.name} --from FILE`"
                        if len(s.files) == 1 else f"put {', '.join(s.files)} in {weights_dir() / s.name}/")
                raise WeightsUnavailable(f"{s.name}: {exc}. Offline? {hint[0].upper() + hint[1:]}.") from None
        hashes[filename] = _check_sha(s, filename, got) if rev == s.revision else sha256_file_memo(got)
    return hashes


def _install(s: WeightSpec, staging: Path, extracted: Path) -> None:
    base = weights_dir() / s.name
    if s.kind == "archive":
        shutil.rmtree(extracted, ignore_errors=True)
        safe_extract(staging / s.files[0], extracted)
        if not (extracted / (s.marker or "")).is_file():
            raise BenchError(f"{s.name}: {s.files[0]} does not contain {s.marker} at its top level")
        shutil.rmtree(base, ignore_errors=True)
        os.replace(extracted, base)
    else:
        base.mkdir(parents=True, exist_ok=True)
        for filename in s.files:  # a repository's files may sit in sub-folders (segmenters/heart.pth)
            (base / filename).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / filename, base / filename)


def fetch(name: str, *, revision: str | None = None, source: str | Path | None = None,
          download: Download = hf_download) -> Path:
    """Download ``name`` at the pinned revision (or install it from a local ``source`` file),
    check its sha256, extract archives, write the sidecar; returns ``resolve``'s path."""
    s = spec(name)
    rev = revision or s.revision
    staging = weights_dir() / ".staging" / name
    extracted = weights_dir() / ".staging" / f"{name}.extracted"
    if source is not None and len(s.files) != 1:
        raise UsageError(f"{name} consists of {len(s.files)} files; --from takes one file")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        hashes = _stage_files(s, rev, source, staging, download)
        _install(s, staging, extracted)
    except WeightsUnavailable:
        raise  # a failed download keeps its partial file in staging, so a retry resumes
    except BaseException:
        shutil.rmtree(extracted, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)  # never leave a file that failed its check
        raise
    shutil.rmtree(staging, ignore_errors=True)
    target = default_location(name)
    record = {"name": name, "repo_id": s.repo_id,
              "revision": rev or (_resolved_revision(s.repo_id, rev) if source is None else None) or "unknown",
              "revision_pinned": rev is not None, "files": hashes,
              "source": str(source) if source is not None else "huggingface_hub",
              "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "path": str(target)}
    if s.kind != "file":
        record["tree_sha256"] = sha256_tree(target)
    _write_sidecar(name, record)
    return resolve(name, target)
