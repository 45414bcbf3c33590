"""A tiny fake PhysioNet MIMIC-CXR(-JPG) tree with invented reports in MIMIC's layout and style.

No MIMIC text is used anywhere: every report below was written for these tests.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

METADATA_COLUMNS = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
    "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]


def report(*sections: tuple[str, str], title: str = "FINAL REPORT") -> str:
    """MIMIC-style text: a centred title, then `` HEADER:  text`` blocks separated by blank lines."""
    out = f"                                 {title}\n"
    for header, body in sections:
        out += f" {header}:  {body}\n \n" if header else f" {body}\n \n"
    return out


@dataclass
class FakeStudy:
    subject: str
    study: str
    split: str  # train | validate | test
    text: str | None  # None: no report file
    images: list[tuple[str, str]] = field(default_factory=list)  # (dicom_id, ViewPosition)
    crlf: bool = False


def write_tree(root: Path, studies: list[FakeStudy], *, reports: str = "tree", jpgs: bool = False) -> Path:
    """Write split/metadata CSVs, reports (``"tree"`` of .txt or ``"zip"``) and optionally empty JPGs."""
    root.mkdir(parents=True, exist_ok=True)
    split_rows = [(d, s.study, s.subject, s.split) for s in studies for d, _ in s.images]
    meta_rows = [(d, s.subject, s.study, "CHEST (PA AND LAT)", view, "3056", "2544", "21800101", "101010.000",
                  "CHEST (PA AND LAT)", "postero-anterior", "Erect") for s in studies for d, view in s.images]
    _write_gz_csv(root / "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"], split_rows)
    _write_gz_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", METADATA_COLUMNS, meta_rows)
    texts = {
        f"files/p{s.subject[:2]}/p{s.subject}/s{s.study}.txt": (s.text.replace("\n", "\r\n") if s.crlf else s.text)
        for s in studies if s.text is not None
    }
    if reports == "zip":
        with zipfile.ZipFile(root / "mimic-cxr-reports.zip", "w") as zf:
            for name, text in sorted(texts.items()):
                zf.writestr(name, text.encode("utf-8"))
    else:
        for name, text in texts.items():
            path = root / "reports" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
    if jpgs:
        for s in studies:
            for d, _ in s.images:
                path = root / "files" / f"p{s.subject[:2]}" / f"p{s.subject}" / f"s{s.study}" / f"{d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"\xff\xd8\xff")
    return root


def _write_gz_csv(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(gzip.compress(buffer.getvalue().encode("utf-8"), mtime=0))
