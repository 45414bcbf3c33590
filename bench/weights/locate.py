"""Finding weights on this machine, never downloading: explicit path, env var, our weights dir,
then the upstream package's own cache. A miss names every place looked at and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rrg_bench.errors import WeightsUnavailable
from rrg_bench.weights.spec import WeightSpec, spec

SIDECAR_SUFFIX = ".fetch.json"
ENV_WEIGHTS_DIR = "BENCH_WEIGHTS_DIR"


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


def read_sidecar(name: str) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(sidecar_path(name).read_text())
    except (OSError, ValueError):
        return None
    return record


def _user_cache_dir(appname: str) -> Path:
    """appdirs' user_cache_dir (what f1chexbert and radgraph use), platformdirs as fallback."""
    try:
        from appdirs import user_cache_dir
    except ImportError:
        from platformdirs import user_cache_dir
    return Path(user_cache_dir(appname))


def _hf_cache(s: WeightSpec) -> list[tuple[str, Path]]:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return []
    found = []
    for repo in (*s.aliases, s.repo_id):
        hit = try_to_load_from_cache(repo, s.marker or s.files[0])  # any cached snapshot; its hash is recorded
        if isinstance(hit, str):
            found.append((f"Hugging Face cache ({repo})", Path(hit).parent))
    return found


def upstream_locations(s: WeightSpec) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for where in s.upstream:
        if where == "f1chexbert":
            out.append(("f1chexbert's cache", _user_cache_dir("chexbert") / s.files[0]))
        elif where == "radgraph":
            from importlib import metadata

            try:
                version = metadata.version("radgraph")
            except metadata.PackageNotFoundError:
                continue
            out.append((f"radgraph {version}'s cache", _user_cache_dir("radgraph") / version / s.name))
        elif where == "hf-cache":
            out.extend(_hf_cache(s))
    return out


def usable(s: WeightSpec, path: Path) -> Path | None:
    """The artefact at ``path`` if it is there (a file, or a directory holding the marker)."""
    if s.kind == "file":
        if path.is_file():
            return path
        if path.is_dir() and (path / s.files[0]).is_file():
            return path / s.files[0]
        return None
    marker = s.marker or s.files[0]
    if path.is_dir():
        if (path / marker).is_file():
            return path
        if (path / s.name / marker).is_file():  # radgraph's model_cache_dir layout
            return path / s.name
    return None


def _not_what(s: WeightSpec) -> str:
    return s.files[0] if s.kind == "file" else f"a directory containing {s.marker or s.files[0]}"


def resolve(name: str, explicit_path: str | Path | None = None) -> Path:
    """The local path of ``name`` (a file or a model directory), never downloading.

    Raises ``WeightsUnavailable`` naming every place looked at and how to get the file.
    """
    s = spec(name)
    if explicit_path is not None:
        p = Path(explicit_path).expanduser()
        found = usable(s, p)
        if found is None:
            raise WeightsUnavailable(f"{name}: {p} is not {_not_what(s)} (does it exist?)")
        return found
    looked: list[str] = []
    env = os.environ.get(s.env)
    if env and s.kind == "archive":
        # shared by the RadGraph models: a parent dir in radgraph's model_cache_dir layout
        found = usable(s, Path(env).expanduser() / name)
        if found is not None:
            return found
        looked.append(f"${s.env}/{name} ({Path(env).expanduser() / name} has no {s.marker})")
    elif env:
        found = usable(s, Path(env).expanduser())
        if found is None:
            raise WeightsUnavailable(f"{name}: ${s.env}={env} is not {_not_what(s)}")
        return found
    else:
        looked.append(f"${s.env} (unset)")
    for label, path in [("our weights dir", default_location(name)), *upstream_locations(s)]:
        found = usable(s, path)
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
            f"Run `bench weights fetch {name}` (downloads {s.repo_id}@{s.short_revision} {' '.join(s.files)}"
            f"{size_txt}), or {put}, or set {s.env}.")
