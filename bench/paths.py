"""Where rrg-bench keeps files it owns on a machine: the annotation cache and the weights.

One place decides, so an environment variable set for one command is honoured by all of them,
and a machine without ``$HOME`` gets a clear error instead of a ``~`` folder created in the
current directory (platformdirs falls back to a relative path there).
"""

from __future__ import annotations

import os
from pathlib import Path

from rrg_bench.errors import UsageError

CACHE_ENV = "BENCH_CACHE_DIR"
WEIGHTS_ENV = "BENCH_WEIGHTS_DIR"
APP = "rrg-bench"


def _user_dir(kind: str, env: str) -> Path:
    explicit = os.environ.get(env)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_absolute():
            path = path.resolve()
        return path
    import platformdirs

    default = Path(platformdirs.user_cache_dir(APP) if kind == "cache" else platformdirs.user_data_dir(APP))
    if not os.environ.get("HOME") or not default.is_absolute():
        raise UsageError(f"no home directory to keep the {kind} in ($HOME is not set); "
                         f"set {env}=/some/writable/dir")
    return default


def cache_root() -> Path:
    """``$BENCH_CACHE_DIR``, else the user cache dir (``~/.cache/rrg-bench`` on Linux)."""
    return _user_dir("cache", CACHE_ENV)


def weights_root() -> Path:
    """``$BENCH_WEIGHTS_DIR``, else ``<user data dir>/weights`` (``~/.local/share/rrg-bench/weights``)."""
    explicit = os.environ.get(WEIGHTS_ENV)
    if explicit:
        return _user_dir("weights", WEIGHTS_ENV)
    return _user_dir("weights", WEIGHTS_ENV) / "weights"
