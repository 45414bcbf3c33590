#!/usr/bin/env bash
# Lint and type-check as CI does. mypy cannot follow setuptools' package-dir mapping (bench/ ->
# rrg_bench, metrics/ -> rrg_bench.metrics, ...), so it checks a symlink view of the installed
# layout in .typecheck/ (git-ignored): strict on the core and the public API, ordinary elsewhere
# (see [tool.mypy] in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m ruff check bench metrics baselines leaderboard tests benchmarks
view=.typecheck/rrg_bench
rm -rf .typecheck && mkdir -p "$view"
for entry in bench/*; do ln -s "$PWD/$entry" "$view/$(basename "$entry")"; done
for pkg in metrics baselines leaderboard data_manifests; do ln -s "$PWD/$pkg" "$view/$pkg"; done
MYPYPATH=.typecheck "$PY" -m mypy -p rrg_bench
