"""Where model weights live, how to fetch them (pinned Hugging Face revision) and their sha256.

Why a module of its own: every model-based metric must (a) never download inside scoring,
(b) fail with a message naming the exact file and where to put it, and (c) record the
sha256 of the bytes it used. ``resolve`` only looks on disk; ``fetch`` is the one place
that downloads (``bench weights fetch NAME``), from a pinned commit, and writes a sidecar
with the sha256.

Lookup order of ``resolve(name)``: the explicit path, the env var of the entry, our weights
dir (``$BENCH_WEIGHTS_DIR`` or ``platformdirs.user_data_dir("rrg-bench")/weights``), then the
upstream package's own cache (f1chexbert's ``appdirs.user_cache_dir("chexbert")/chexbert.pth``,
radgraph's ``user_cache_dir("radgraph")/<version>/<model>``, the HF cache for
bert-base-uncased).

Hashing a 1.3 GB checkpoint takes seconds, so ``rrg_bench.hashing.sha256_file_memo`` memoises by
(absolute path, size, mtime_ns) in small records under the cache dir; a changed file gets a
new record. Nothing is written next to user files.

stdlib + platformdirs only at import; huggingface_hub is imported by ``fetch``.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rrg_bench.hashing import sha256_file_memo, sha256_path, sha256_tree
from rrg_bench.errors import BenchError, UsageError, WeightsUnavailable

#: StanfordAIMI/RRG_scorers commit pinned for chexbert.pth and the RadGraph archives. The same
#: commit appears as the snapshot of these files in several independent public projects (HF
#: cache paths ``models--StanfordAIMI--RRG_scorers/snapshots/6646433b…``); the sha256 values
#: below were published by projects that downloaded them. Not downloaded here (no HF access).
RRG_SCORERS_REPO = "StanfordAIMI/RRG_scorers"
RRG_SCORERS_REVISION = "6646433b3ad83a10f6e141db76d0ece44312b236"
#: google-bert/bert-base-uncased commit (the snapshot id seen in HF caches since the repo moved)
BERT_BASE_UNCASED_REPO = "google-bert/bert-base-uncased"
BERT_BASE_UNCASED_REVISION = "86b5e0934494bd15c9632b12f734a8a67f723594"

ENV_WEIGHTS_DIR = "BENCH_WEIGHTS_DIR"
SIDECAR_SUFFIX = ".fetch.json"


@dataclass(frozen=True)
class WeightSpec:
    """One known artefact. ``kind``: ``file`` (one file), ``archive`` (a .tar.gz extracted to a
    directory) or ``files`` (several files of one repo, kept in a directory)."""

    name: str
    repo_id: str
    revision: str
    files: tuple[str, ...]
    kind: str
    env: str
    description: str
    sha256: dict[str, str] = field(default_factory=dict)  # filename -> known sha256
    size: dict[str, int] = field(default_factory=dict)  # filename -> known size in bytes
    #: directory entries must contain this file to count as present
    marker: str | None = None


KNOWN: dict[str, WeightSpec] = {
    "chexbert": WeightSpec(
        name="chexbert", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
        files=("chexbert.pth",), kind="file", env="BENCH_CHEXBERT_CKPT",
        description="CheXbert labeler checkpoint (Smit et al. 2020), as used by f1chexbert 0.0.2",
        sha256={"chexbert.pth": "6550703c92d640e1e04d8105a7a185d76ece0f25fcbf033d292785bf22c0fde1"},
        size={"chexbert.pth": 1_314_414_442},
    ),
    "radgraph": WeightSpec(
        name="radgraph", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
        files=("radgraph.tar.gz",), kind="archive", env="BENCH_RADGRAPH_MODEL_DIR",
        description="RadGraph v1 model (radgraph 0.1.18 model_type='radgraph'; ReXrank/RadCliQ variant)",
        marker="config.json",
    ),
    "radgraph-xl": WeightSpec(
        name="radgraph-xl", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
        files=("radgraph-xl.tar.gz",), kind="archive", env="BENCH_RADGRAPH_MODEL_DIR",
        description="RadGraph-XL model (radgraph 0.1.18 default model_type)",
        sha256={"radgraph-xl.tar.gz": "fadb5a3454e8996714b609e3105a07e447fa61aa88fffe966b650959475117b6"},
        size={"radgraph-xl.tar.gz": 416_179_571},
        marker="config.json",
    ),
    "modern-radgraph-xl": WeightSpec(
        name="modern-radgraph-xl", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
        files=("modern-radgraph-xl.tar.gz",), kind="archive", env="BENCH_RADGRAPH_MODEL_DIR",
        description="ModernBERT RadGraph-XL model (radgraph 0.1.18 model_type='modern-radgraph-xl')",
        sha256={"modern-radgraph-xl.tar.gz": "dfc715608d0f1bfc15168f80cd1953ea63bd7960a5506401848858f8dbdea5ff"},
        size={"modern-radgraph-xl.tar.gz": 579_388_064},
        marker="config.json",
    ),
    "bert-base-uncased": WeightSpec(
        name="bert-base-uncased", repo_id=BERT_BASE_UNCASED_REPO, revision=BERT_BASE_UNCASED_REVISION,
        files=("vocab.txt", "tokenizer_config.json", "config.json"), kind="files",
        env="BENCH_BERT_BASE_UNCASED_DIR",
        description="bert-base-uncased tokenizer vocabulary and config (CheXbert's tokenizer; no weights)",
        # the vocab.txt sha256 equals that of the copy shipped in all-MiniLM-L6-v2 (same vocabulary)
        sha256={"vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"},
        marker="vocab.txt",
    ),
}


def names() -> list[str]:
    return sorted(KNOWN)


def spec(name: str) -> WeightSpec:
    try:
        return KNOWN[name]
    except KeyError:
        raise UsageError(f"unknown weights {name!r}; known: {', '.join(names())}") from None


def weights_dir() -> Path:
    from rrg_bench.paths import weights_root

    return weights_root()


def default_location(name: str) -> Path:
    """Where ``fetch`` puts an entry (a file for ``file`` entries, else a directory)."""
    s = spec(name)
    base = weights_dir() / name
    return base / s.files[0] if s.kind == "file" else base


def sidecar_path(name: str) -> Path:
    return weights_dir() / f"{name}{SIDECAR_SUFFIX}"


# ---- upstream packages' own caches ------------------------------------------------------

def _user_cache_dir(appname: str) -> Path:
    """appdirs' user_cache_dir (what f1chexbert and radgraph use), platformdirs as fallback."""
    try:
        from appdirs import user_cache_dir  # type: ignore[import-untyped]
    except ImportError:
        from platformdirs import user_cache_dir
    return Path(user_cache_dir(appname))


def _upstream_locations(name: str) -> list[tuple[str, Path]]:
    if name == "chexbert":
        return [("f1chexbert's cache", _user_cache_dir("chexbert") / "chexbert.pth")]
    if name in ("radgraph", "radgraph-xl", "modern-radgraph-xl"):
        from importlib import metadata

        try:
            version = metadata.version("radgraph")
        except metadata.PackageNotFoundError:
            return []
        return [(f"radgraph {version}'s cache", _user_cache_dir("radgraph") / version / name)]
    if name == "bert-base-uncased":
        found = []
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return []
        for repo in ("bert-base-uncased", BERT_BASE_UNCASED_REPO):
            hit = try_to_load_from_cache(repo, "vocab.txt")
            if isinstance(hit, str):
                found.append((f"Hugging Face cache ({repo})", Path(hit).parent))
        return found
    return []


# ---- resolve ----------------------------------------------------------------------------

def _usable(s: WeightSpec, path: Path) -> Path | None:
    """The artefact at ``path`` if it is there (a file, or a directory holding the marker)."""
    if s.kind == "file":
        if path.is_file():
            return path
        if path.is_dir() and (path / s.files[0]).is_file():
            return path / s.files[0]
        return None
    assert s.marker is not None
    if path.is_dir():
        if (path / s.marker).is_file():
            return path
        if (path / s.name / s.marker).is_file():  # radgraph's model_cache_dir layout
            return path / s.name
    return None


def resolve(name: str, explicit_path: str | Path | None = None) -> Path:
    """The local path of ``name`` (a file or a model directory), never downloading.

    Raises ``WeightsUnavailable`` naming every place looked at and how to get the file.
    """
    s = spec(name)
    if explicit_path is not None:
        p = Path(explicit_path).expanduser()
        found = _usable(s, p)
        if found is None:
            what = s.files[0] if s.kind == "file" else f"a directory containing {s.marker}"
            raise WeightsUnavailable(f"{name}: {p} is not {what} (does it exist?)")
        return found
    looked: list[str] = []
    env = os.environ.get(s.env)
    if env and s.kind == "archive":
        # shared by the RadGraph models: a parent dir in radgraph's model_cache_dir layout
        found = _usable(s, Path(env).expanduser() / name)
        if found is not None:
            return found
        looked.append(f"${s.env}/{name} ({Path(env).expanduser() / name} has no {s.marker})")
    elif env:
        found = _usable(s, Path(env).expanduser())
        if found is None:
            what = s.files[0] if s.kind == "file" else f"a directory containing {s.marker}"
            raise WeightsUnavailable(f"{name}: ${s.env}={env} is not {what}")
        return found
    else:
        looked.append(f"${s.env} (unset)")
    candidates = [("our weights dir", default_location(name))] + _upstream_locations(name)
    for label, path in candidates:
        found = _usable(s, path)
        if found is not None:
            return found
        looked.append(f"{path} ({label})")
    raise WeightsUnavailable(missing_message(name, looked))


def missing_message(name: str, looked: list[str] | None = None) -> str:
    s = spec(name)
    target = default_location(name)
    size = sum(s.size.values())
    size_txt = f", {size / 1e9:.2f} GB" if size else ""
    put = (f"put {s.files[0]} at {target}" if s.kind == "file"
           else f"extract {s.files[0]} into {target}/" if s.kind == "archive"
           else f"put {', '.join(s.files)} in {target}/")
    where = f" Looked in: {'; '.join(looked)}." if looked else ""
    return (f"{name} weights not found ({s.description}).{where} "
            f"Run `bench weights fetch {name}` (downloads {s.repo_id}@{s.revision[:12]} {' '.join(s.files)}{size_txt}), "
            f"or {put}, or set {s.env}.")


# ---- fetch ------------------------------------------------------------------------------

def _read_sidecar(name: str) -> dict | None:
    try:
        return json.loads(sidecar_path(name).read_text())
    except (OSError, ValueError):
        return None


def _write_sidecar(name: str, record: dict) -> None:
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
                         f"({s.repo_id}@{s.revision[:12]}/{filename}); delete it and fetch again")
    return got


def _safe_extract(archive: Path, dest: Path) -> None:
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


def _hf_download(repo_id: str, filename: str, revision: str, local_dir: Path) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise WeightsUnavailable("`bench weights fetch` needs huggingface_hub: pip install huggingface_hub") from None
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, local_dir=local_dir))
    except Exception as exc:  # network, offline mode, auth: all mean "cannot fetch here"
        raise WeightsUnavailable(f"could not download {repo_id}@{revision[:12]}/{filename} "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def fetch(name: str, *, revision: str | None = None, source: str | Path | None = None,
          download: Callable[[str, str, str, Path], Path] = _hf_download) -> Path:
    """Download ``name`` at the pinned revision (or install it from a local ``source`` file),
    check its sha256, extract archives, write the sidecar; returns ``resolve``'s path."""
    s = spec(name)
    rev = revision or s.revision
    target = default_location(name)
    base = weights_dir() / name
    staging = weights_dir() / ".staging" / name
    extracted = weights_dir() / ".staging" / f"{name}.extracted"
    if source is not None and len(s.files) != 1:
        raise UsageError(f"{name} consists of {len(s.files)} files; --from takes one file")
    staging.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    try:
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
                    hint = (f"download {filename} elsewhere and run `bench weights fetch {name} --from FILE`"
                            if len(s.files) == 1 else f"put {', '.join(s.files)} in {base}/")
                    raise WeightsUnavailable(f"{name}: {exc}. Offline? {hint[0].upper() + hint[1:]}.") from None
            hashes[filename] = _check_sha(s, filename, got) if rev == s.revision else sha256_file_memo(got)
        if s.kind == "archive":
            shutil.rmtree(extracted, ignore_errors=True)
            _safe_extract(staging / s.files[0], extracted)
            if not (extracted / (s.marker or "")).is_file():
                raise BenchError(f"{name}: {s.files[0]} does not contain {s.marker} at its top level")
            shutil.rmtree(base, ignore_errors=True)
            os.replace(extracted, base)
        else:
            base.mkdir(parents=True, exist_ok=True)
            for filename in s.files:
                os.replace(staging / filename, base / filename)
    except WeightsUnavailable:
        raise  # a failed download keeps its partial file in staging, so a retry resumes
    except BaseException:
        shutil.rmtree(extracted, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)  # never leave a file that failed its check
        raise
    shutil.rmtree(staging, ignore_errors=True)
    record = {"name": name, "repo_id": s.repo_id, "revision": rev, "files": hashes,
              "source": str(source) if source is not None else "huggingface_hub",
              "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "path": str(target)}
    if s.kind != "file":
        record["tree_sha256"] = sha256_tree(target)
    _write_sidecar(name, record)
    return resolve(name, target)


# ---- verify -----------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyResult:
    name: str
    path: Path
    sha256: str
    expected: str | None
    ok: bool | None  # None: nothing recorded to compare against
    message: str


def verify(name: str, explicit_path: str | Path | None = None) -> VerifyResult:
    """Hash the resolved artefact and compare with the pinned sha256 or the fetch sidecar."""
    s = spec(name)
    path = resolve(name, explicit_path)
    got = sha256_path(path)
    expected: str | None = None
    source = ""
    if s.kind == "file":
        expected, source = s.sha256.get(s.files[0]), f"pinned for {s.repo_id}@{s.revision[:12]}"
    if expected is None:
        side = _read_sidecar(name)
        if side and Path(side.get("path", "")).resolve() == path.resolve():
            expected = side.get("tree_sha256") if s.kind != "file" else side.get("files", {}).get(s.files[0])
            source = f"recorded by `bench weights fetch` in {sidecar_path(name)}"
    if expected is None:
        return VerifyResult(name, path, got, None, None, f"{name}: {path} sha256 {got} (nothing recorded to compare)")
    ok = got == expected
    msg = (f"{name}: {path} sha256 {got} matches ({source})" if ok else
           f"{name}: {path} sha256 {got} differs from {expected} ({source}); fetch it again")
    return VerifyResult(name, path, got, expected, ok, msg)
