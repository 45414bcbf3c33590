"""``bench data export``: a dataset split's studies as a Hugging Face dataset or a parquet file.

What is shared by default is what a manifest holds — study ids, image paths (relative to the data
root), reference sha256 — never report text, because the user may share the file and some
datasets (MIMIC-CXR, CheXpert Plus) are credentialed. ``with_references`` adds the text for the
user's own use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rrg_bench.api.dataset import Dataset
from rrg_bench.errors import UsageError

FORMATS = ("hf", "parquet")


def _relative(path: Path | None, root: Path | None) -> str | None:
    if path is None:
        return None
    path = Path(path)
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def study_rows(dataset: Dataset, split: str, with_references: bool) -> list[dict[str, Any]]:
    if split not in dataset.splits:
        raise UsageError(f"dataset {dataset.name!r} has splits {', '.join(dataset.splits)}; got {split!r}")
    rows = []
    for s in dataset.studies(split):
        row: dict[str, Any] = {"study_id": s.study_id, "split": s.split, "reference_sha256": s.reference_sha256,
                               "image_paths": [_relative(p, dataset.data_root) for p in s.image_paths],
                               "frontal_image": _relative(s.frontal_image, dataset.data_root)}
        if with_references:
            row["reference"] = s.reference
        rows.append(row)
    return rows


def export_split(dataset: Dataset, split: str, fmt: str, output: Path, *, with_references: bool = False) -> int:
    """Write the split; returns the number of studies."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    rows = study_rows(dataset, split, with_references)
    if fmt == "parquet":
        import pandas as pd

        output.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(output, index=False)
        return len(rows)
    from rrg_bench.hf import _datasets

    data = _datasets().Dataset.from_list(rows, info=_datasets().DatasetInfo(
        description=f"rrg-bench export of {dataset.name} / {split}", dataset_name=dataset.name.replace("/", "_")))
    data.save_to_disk(str(output))
    return len(rows)
