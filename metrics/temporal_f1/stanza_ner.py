"""The stanza half of RadEval's temporal F1: the ``en``/``radiology`` NER pipeline, found on this
machine and never downloaded (RadEval calls ``stanza.download`` at every start).

Why a model directory and not a ``bench weights`` entry: stanza resolves its models through a
``resources.json`` published on GitHub (not on the Hugging Face Hub, where ``bench weights
fetch`` downloads from), so the directory ``stanza.download`` writes is what we look for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rrg_bench.errors import WeightsUnavailable
from rrg_bench.hashing import sha256_file_memo

ENV_DIR = "BENCH_STANZA_DIR"
#: where ``stanza.download(..., model_dir=...)`` puts the radiology NER model
NER_FILE = Path("en") / "ner" / "radiology.pt"
DOWNLOAD_HINT = ("python -c \"import stanza; stanza.download('en', package='radiology', "
                 "processors={'ner': 'radiology'}, model_dir='DIR')\"")

#: (texts) -> per text, the (entity text, entity type) pairs stanza finds
NerFunction = Callable[[list[str]], list[list[tuple[str, str]]]]
_PIPELINES: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def _usable(path: Path) -> bool:
    return (path / "resources.json").is_file() and (path / NER_FILE).is_file()


def locate(explicit: str | None = None) -> Path:
    """The stanza model directory: ``explicit``, ``$BENCH_STANZA_DIR``, ``$STANZA_RESOURCES_DIR``,
    then stanza's default (``~/stanza_resources``)."""
    candidates: list[tuple[str, Path]] = []
    if explicit is not None:
        candidates.append(("stanza_dir=", Path(explicit).expanduser()))
    for env in (ENV_DIR, "STANZA_RESOURCES_DIR"):
        if os.environ.get(env):
            candidates.append((f"${env}", Path(os.environ[env]).expanduser()))
    candidates.append(("stanza's default", Path.home() / "stanza_resources"))
    for _, path in candidates:
        if _usable(path):
            return path
    looked = "; ".join(f"{label} {path}" for label, path in candidates)
    raise WeightsUnavailable(
        f"temporal_f1[ner=stanza] needs stanza's en/radiology NER model (resources.json and {NER_FILE}). "
        f"Looked in: {looked}. On a machine with network run {DOWNLOAD_HINT}, copy DIR here and set "
        f"{ENV_DIR}=DIR (or use temporal_f1[ner=none], the keyword regex alone).")


def model_facts(directory: Path) -> dict[str, Any]:
    """What identifies the NER model: stanza's version and the model file's sha256."""
    from importlib import metadata

    try:
        version = metadata.version("stanza")
    except metadata.PackageNotFoundError:
        version = None
    return {"stanza": version, "ner_model_sha256": sha256_file_memo(directory / NER_FILE)}


def load_pipeline(directory: Path, device: str = "cpu") -> NerFunction:
    """RadEval's pipeline (``package='radiology'``, tokenize default, ner radiology), offline."""
    key = (str(directory.resolve()), device)
    with _LOCK:
        if key not in _PIPELINES:
            import stanza

            _PIPELINES.clear()
            _PIPELINES[key] = stanza.Pipeline(
                lang="en", dir=str(directory), package="radiology",
                processors={"tokenize": "default", "ner": "radiology"}, download_method=None,
                logging_level="ERROR", verbose=False, device=device)
        nlp = _PIPELINES[key]

    def entities(texts: list[str]) -> list[list[tuple[str, str]]]:
        return [[(ent.text, ent.type) for ent in nlp(text).entities] for text in texts]

    return entities


def annotate(ner: NerFunction, texts: Sequence[str]) -> list[list[list[str]]]:
    """Every entity per text as JSON-friendly [text, type] pairs (filtered later, so the cache
    keeps the model's whole output)."""
    return [[[t, kind] for t, kind in found] for found in ner(list(texts))]
