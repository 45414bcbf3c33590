"""MIMIC-CXR 2.0.0, official split, findings section, studies with a frontal (AP/PA) image.

MIMIC-CXR is credentialed (PhysioNet DUA): no id, path or word of it is committed. The
committed manifest (data_manifests/mimic_cxr/official) holds only the policies and the
published counts. ``prepare.prepare_mimic_cxr`` builds the study list and the references from
the user's own PhysioNet copy into the user's data root; ``MimicCxrOfficial`` loads from there.

Policies (the card has the details):
- split: ``mimic-cxr-2.0.0-split.csv.gz`` as published (``validate`` is called ``val`` here);
  its per-split study and image counts must equal the published ones, else the prepared
  data is marked non-official (``check_counts=False``) or preparation stops.
- reference: the findings section by the MIT-LCP section rules (``sections``), the
  last findings section of the report, with runs of whitespace collapsed to one space.
- view: frontal = ``ViewPosition`` AP or PA in ``mimic-cxr-2.0.0-metadata.csv.gz``; the
  study's frontal image is its first PA image by dicom_id, else its first AP image.
- exclusions, counted per split, first reason wins: no report file, report sectioned by hand
  upstream (absent from ``mimic_cxr_sectioned.csv``), no findings section, no frontal image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rrg_bench.datasets.mimic_cxr.physionet import SPLITS, instructions
from rrg_bench.datasets.prepared import PreparedDataset

NAME = "mimic_cxr/official"
#: where ``bench data prepare mimic_cxr`` writes, relative to the data root
PREPARED_SUBDIR = Path("mimic_cxr") / "official"

HOW_TO_GET = instructions("mimic_cxr")


class MimicCxrOfficial(PreparedDataset):
    """MIMIC-CXR official split, findings, AP/PA studies — from the locally prepared folder."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = ("MIMIC-CXR 2.0.0 official split, findings (MIT-LCP rules), AP/PA studies "
                                  "(prepare locally)")
    splits: ClassVar[tuple[str, ...]] = SPLITS
    reference_policy: ClassVar[str] = "findings"
    manifest_name: ClassVar[str] = NAME
    prepared_subdir: ClassVar[Path] = PREPARED_SUBDIR
    other_subdirs: ClassVar[tuple[str, ...]] = (PREPARED_SUBDIR.parts[0],)  # <data root>/mimic_cxr
    how_to_get: ClassVar[str] = HOW_TO_GET
    prepare_command: ClassVar[str] = "mimic_cxr"
    row_meta: ClassVar[tuple[str, ...]] = ("subject_id",)
    not_official: ClassVar[str] = "split counts differ from the published ones"

    def check_split(self, split: str) -> None:
        """Nothing to do: the manifests refuse an unknown split (a usage error, as for shipped datasets)."""

    def _images_line(self, split: str, rows: list[dict[str, Any]], image_root: Path) -> tuple[str, bool] | None:
        absent = sum(not (image_root / row["frontal"]).is_file() for row in rows)
        return f"{split}: frontal images {len(rows) - absent} of {len(rows)} under {image_root}", absent == 0
