"""Agreement of the ``chexpert_rules`` labeler with Open-i's human MeSH/Problems codes.

Why: a rule labeler needs an independent check. IU X-Ray reports carry manual MeSH codes
(``indiana_reports.csv``, column ``MeSH``); mapping those terms to the 14 observations gives a
reference that no labeler produced. Only the R2Gen **train + val** studies are used, so the
phrase lists were never tuned on the test split.

Run: ``python -m rrg_bench.metrics.chexpert_rules.agreement [--shared DIR] [--json] [--splits ...]``
(DIR defaults to ``$BENCH_SHARED`` or ``<repo>/../shared``). The data files are read in
place and never copied.

Mapping rules (``MESH_MAP``): a MeSH term is ``Heading/qualifier/...``; a term maps to an
observation when its heading is listed and, where qualifiers are given, at least one of them
is present. Studies indexed ``No Indexing`` are left out (no human codes). Headings not in
the table map to nothing (they still make the study non-``normal``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rrg_bench.metrics.chexpert_rules.labeler import label_reports
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS, NO_FINDING, POSITIVE, UNCERTAIN

#: heading -> (observation, required qualifiers or None for "any")
MESH_MAP: dict[str, list[tuple[str, frozenset[str] | None]]] = {
    "Mediastinum": [("Enlarged Cardiomediastinum", frozenset({"enlarged", "prominent"}))],
    "Cardiomegaly": [("Cardiomegaly", None)],
    "Cardiac Shadow": [("Cardiomegaly", frozenset({"enlarged"}))],
    # a round opacity/density is how the indexers code a nodular one: CheXpert counts
    # "nodular opacity/density" as Lung Lesion (and the opacity as Lung Opacity)
    "Opacity": [("Lung Opacity", None), ("Lung Lesion", frozenset({"round"}))],
    "Density": [("Lung Lesion", frozenset({"round"}))],
    "Airspace Disease": [("Lung Opacity", None)],
    "Infiltrate": [("Lung Opacity", None)],
    "Nodule": [("Lung Lesion", None)],
    "Mass": [("Lung Lesion", None)],
    "Cavitation": [("Lung Lesion", None)],
    "Pulmonary Edema": [("Edema", None)],
    "Consolidation": [("Consolidation", None)],
    "Pneumonia": [("Pneumonia", None)],
    "Pulmonary Atelectasis": [("Atelectasis", None)],
    "Pneumothorax": [("Pneumothorax", None)],
    "Hydropneumothorax": [("Pneumothorax", None), ("Pleural Effusion", None)],
    "Hemopneumothorax": [("Pneumothorax", None), ("Pleural Effusion", None)],
    "Pleural Effusion": [("Pleural Effusion", None)],
    "Hemothorax": [("Pleural Effusion", None)],
    "Thickening": [("Pleural Other", frozenset({"pleura"}))],
    "Cicatrix": [("Pleural Other", frozenset({"pleura"}))],
    "Calcinosis": [("Pleural Other", frozenset({"pleura"}))],
    "Fractures, Bone": [("Fracture", None)],
    "Catheters, Indwelling": [("Support Devices", None)],
    "Tube, Inserted": [("Support Devices", None)],
    "Medical Device": [("Support Devices", None)],
    "Implanted Medical Device": [("Support Devices", None)],
    "Stents": [("Support Devices", None)],
}
NORMAL_TERM = "normal"
#: Headings that do not contradict No Finding: CheXpert's No Finding ignores Support Devices,
#: and image quality is not a finding.
NO_FINDING_NEUTRAL = frozenset({"Catheters, Indwelling", "Tube, Inserted", "Medical Device",
                                "Implanted Medical Device", "Stents",
                                "Technical Quality of Image Unsatisfactory"})
NOT_INDEXED = "No Indexing"
SPLITS = ("train", "val")


def shared_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The shared data folder: argument, ``$BENCH_SHARED``, or ``<repo>/../shared``."""
    if explicit:
        return Path(explicit)
    if os.environ.get("BENCH_SHARED"):
        return Path(os.environ["BENCH_SHARED"])
    return Path(__file__).resolve().parents[3] / "shared"


def mesh_labels(mesh: str) -> np.ndarray | None:
    """0/1 vector over the 14 observations from one MeSH cell; None if the study is not indexed."""
    terms = [t.strip() for t in mesh.split(";") if t.strip()]
    if not terms or any(t == NOT_INDEXED for t in terms):
        return None
    row = np.zeros(len(CHEXPERT_LABELS), dtype=np.int8)
    headings = [t.split("/")[0].strip() for t in terms]
    if all(h.lower() == NORMAL_TERM or h in NO_FINDING_NEUTRAL for h in headings):
        row[NO_FINDING] = 1
    for term in terms:
        heading, *qualifiers = [p.strip() for p in term.split("/")]
        for observation, required in MESH_MAP.get(heading, []):
            if required is None or required & {q.lower() for q in qualifiers}:
                row[CHEXPERT_LABELS.index(observation)] = 1
    return row


@dataclass
class Corpus:
    uids: list[int]
    texts: list[str]  # findings + impression
    reference: np.ndarray  # [n, 14] 0/1 from MeSH


def load_corpus(shared: Path, splits: Sequence[str] = SPLITS) -> Corpus:
    """Findings + impression and MeSH labels of the R2Gen studies of ``splits`` (indexed ones)."""
    iu = shared / "data" / "iu_xray"
    annotation = json.loads((iu / "annotation.json").read_text())
    uids = []
    for split in splits:
        for entry in annotation[split]:
            match = re.match(r"CXR(\d+)_", entry["id"])
            if not match:
                raise ValueError(f"{iu / 'annotation.json'}: unexpected id {entry['id']!r} in {split}")
            uids.append(int(match.group(1)))
    with open(iu / "indiana_reports.csv", newline="", encoding="utf-8") as fh:
        rows = {int(r["uid"]): r for r in csv.DictReader(fh)}
    corpus = Corpus([], [], np.zeros((0, len(CHEXPERT_LABELS)), dtype=np.int8))
    refs = []
    for uid in uids:
        row = rows[uid]
        ref = mesh_labels(row["MeSH"] or "")
        if ref is None:
            continue
        corpus.uids.append(uid)
        corpus.texts.append("\n".join(p.strip() for p in (row["findings"], row["impression"]) if p and p.strip()))
        refs.append(ref)
    corpus.reference = np.stack(refs)
    return corpus


def agreement(reference: np.ndarray, codes: np.ndarray,
              positive: Sequence[int] = (POSITIVE,)) -> dict[str, dict[str, float]]:
    """Per-label precision/recall/F1 of labeler positives against MeSH positives, plus micro."""
    predicted = np.isin(codes, positive)
    truth = reference.astype(bool)
    table: dict[str, dict[str, float]] = {}
    for j, name in enumerate(CHEXPERT_LABELS):
        tp = int(np.sum(predicted[:, j] & truth[:, j]))
        n_pred, n_true = int(predicted[:, j].sum()), int(truth[:, j].sum())
        table[name] = _prf(tp, n_pred, n_true)
    tp = int(np.sum(predicted & truth))
    table["micro"] = _prf(tp, int(predicted.sum()), int(truth.sum()))
    return table


def _prf(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_pred + n_true) if n_pred + n_true else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": n_true, "predicted": n_pred, "tp": tp}


def compute(shared: Path | None = None, splits: Sequence[str] = SPLITS
            ) -> tuple[int, dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(number of studies, table with uncertain as not positive, table with uncertain as positive)."""
    corpus = load_corpus(shared_dir(shared), splits)
    codes = label_reports(corpus.texts)
    strict = agreement(corpus.reference, codes, (POSITIVE,))
    lenient = agreement(corpus.reference, codes, (POSITIVE, UNCERTAIN))
    return len(corpus.texts), strict, lenient


def markdown(n: int, strict: dict[str, dict[str, float]], lenient: dict[str, dict[str, float]],
             splits: Sequence[str] = SPLITS) -> str:
    lines = [f"IU X-Ray R2Gen {'+'.join(splits)}, {n} MeSH-indexed studies, findings + impression.",
             "",
             "| observation | support (MeSH) | labeler positive | precision | recall | F1 "
             "| F1 (uncertain as positive) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in (*CHEXPERT_LABELS, "micro"):
        s, l = strict[name], lenient[name]
        lines.append(f"| {name} | {s['support']} | {s['predicted']} | {s['precision']:.3f} | {s['recall']:.3f} | "
                     f"{s['f1']:.3f} | {l['f1']:.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", help="shared data folder (default: $BENCH_SHARED or <repo>/../shared)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--splits", default=",".join(SPLITS),
                        help="R2Gen splits to use (default train,val; the test split is for a held-out check only)")
    args = parser.parse_args(argv)
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    n, strict, lenient = compute(Path(args.shared) if args.shared else None, splits)
    if args.json:
        print(json.dumps({"splits": splits, "studies": n, "uncertain_not_positive": strict,
                          "uncertain_positive": lenient}, indent=1))
    else:
        print(markdown(n, strict, lenient, splits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
