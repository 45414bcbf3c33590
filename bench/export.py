"""A record's predictions in other people's formats: ReXrank's submission JSON, plain JSONL or CSV.

Exported from the record's samples (the exact texts that were scored, hash-checked), so scoring
the exported file with ``bench score`` reproduces the record's numbers.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rrg_bench.errors import UsageError
from rrg_bench.records import LoadedRecord

FORMATS = ("rexrank", "jsonl", "csv")


def export_text(source: Path | str | LoadedRecord, fmt: str) -> tuple[LoadedRecord, str]:
    """(the record read, the file's text) for ``fmt``."""
    from rrg_bench.datasets.rexrank_json import PREDICTION_KEY
    from rrg_bench.samples import read_samples

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    loaded, frame = read_samples(source)
    rows = list(zip(frame.index, frame["reference"], frame["prediction"]))
    if fmt == "rexrank":
        # ReXrank's submission: its test file's objects plus ``model_prediction``; ``report`` is the reference
        obj = {sid: {"report": ref, PREDICTION_KEY: pred} for sid, ref, pred in rows}
        return loaded, json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    if fmt == "jsonl":
        return loaded, "".join(json.dumps({"study_id": sid, "report": pred}, ensure_ascii=False) + "\n"
                               for sid, _, pred in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["study_id", "report"])
    writer.writerows((sid, pred) for sid, _, pred in rows)
    return loaded, buffer.getvalue()
