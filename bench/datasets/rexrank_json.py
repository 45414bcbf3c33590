"""ReXrank's JSON files: one object keyed by study id, one object per study.

Why one reader: the layout reaches rrg-bench from two sides — ReXrank's reference files
(``section_findings``, ``section_impression``, ``image_path``, ``key_image_path``, ``report``),
read by the ReXrank datasets and preparers, and submissions in ReXrank's format (the same
objects plus ``model_prediction``), read by ``bench score`` — and a file must be understood,
and refused, the same way on both. The caller chooses the error class (``DataError`` for
data, ``PredictionsError`` for predictions) and the fields every study must carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrg_bench.datasets.base import read_json
from rrg_bench.errors import BenchError, DataError

#: the two sections every ReXrank reference policy is built from
SECTIONS = ("section_findings", "section_impression")

#: a submission's report; its ``report`` field is the ground truth, not the prediction
PREDICTION_KEY = "model_prediction"


def prediction_key(text_col: str) -> str:
    """The field holding a submission's report: the default text column ``report`` means
    ``model_prediction`` here (ReXrank's ``report`` is the reference); another column is taken as named."""
    return PREDICTION_KEY if text_col == "report" else text_col


def rexrank_studies(data: Any, where: Path | str, *, required: Sequence[str] = SECTIONS,
                    error: type[BenchError] = DataError) -> dict[str, dict[str, Any]]:
    """``data`` (a parsed ReXrank file), checked: an object keyed by study id, each study holding ``required``."""
    if not isinstance(data, dict):
        raise error(f"{where}: expected ReXrank's object keyed by study id")
    for sid, entry in data.items():
        if not isinstance(entry, dict):
            fields = ", ".join(f"'{k}'" for k in required) or "fields"
            raise error(f"{where}:study {sid}: expected an object with {fields}, got {type(entry).__name__}")
        for key in required:
            if key not in entry:
                present = ", ".join(map(str, entry)) or "none"
                raise error(f"{where}:study {sid}: missing field '{key}' (fields present: {present})")
    return data


def read_rexrank_json(path: Path, *, required: Sequence[str] = SECTIONS) -> dict[str, dict[str, Any]]:
    """A ReXrank data file: ``{study_id: {section_findings, section_impression, ...}}`` in file order.

    JSON ``NaN`` (ReXrank's missing section) is read as a float NaN, as ReXrank's tooling does.
    """
    return rexrank_studies(read_json(path), path, required=required)
