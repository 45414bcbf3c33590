"""Facts about this machine and checkout that can move a score, gathered without importing
heavy packages (versions come from distribution metadata, not from importing them)."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import rrg_bench

PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "torch", "transformers", "tokenizers",
            "accelerate", "pycocoevalcap", "f1chexbert", "radgraph", "huggingface-hub", "pydantic")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.lru_cache(maxsize=1)
def java_timeout(default: float = 600.0) -> float:
    """Seconds a Java program may take before it is killed: ``$BENCH_NLG_TIMEOUT`` or ``default``
    (a ``java`` that never answers must end a run with a message, not hang it)."""
    env = os.environ.get("BENCH_NLG_TIMEOUT")
    try:
        return float(env) if env else default
    except ValueError:
        return default


def java_version() -> str | None:
    java = shutil.which("java")
    if not java:
        return None
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=min(30.0, java_timeout()))
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (proc.stderr or proc.stdout).strip().splitlines()
    return first[0] if first else None


def _git(*args: str) -> str | None:
    root = Path(rrg_bench.__file__).resolve().parent.parent
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def harness_info() -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    diff = _git("diff", "HEAD") if status else ""
    return {
        "version": rrg_bench.__version__,
        "git_commit": commit.strip() if commit else None,
        "git_dirty": bool(status.strip()) if status is not None else None,
        "git_diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
    }


def environment_info(device: str) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "java": java_version(),
        "device": device,
    }
