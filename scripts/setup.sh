#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with rrg-bench and every
# extra (models, clinical metrics, plots, tests). Idempotent: rerunning only fills what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "rrg-bench needs Python >= 3.10 (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! command -v java >/dev/null 2>&1; then
  echo "warning: no Java found; METEOR and the PTB tokenizer need it (apt-get install openjdk-17-jre-headless)" >&2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build
.venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install --quiet -e ".[all]"
# RaTEScore's sentence splitter (medspacy): its PyRuSH pins spacy<3.8 (which would pull numpy<2)
# but works with spaCy 3.8, so it is installed without its declared dependencies
.venv/bin/python -m pip install --quiet --no-deps medspacy==1.3.1 PyRuSH==1.0.13 PyFastNER quicksectx loguru pysbd \
  medspacy_quickumls==3.2 medspacy_unqlite pysimstring Unidecode jsonschema referencing rpds-py \
  jsonschema-specifications attrs six
# METEOR's paraphrase index (once per machine, ~20 s; otherwise built by the first NLG score):
# METEOR then loads only the entries a call can use. Optional: without it the full table is used.
.venv/bin/python -c 'import sys; from rrg_bench.metrics.nlg.paraphrases import main; sys.exit(main())' \
  || echo "warning: METEOR paraphrase index not built; the first NLG score builds it (or uses the full table)" >&2
echo "rrg-bench installed in .venv ($(.venv/bin/bench --version))"
