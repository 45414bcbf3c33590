"""What is computed from SRR-BERT's label vectors: RadEval's sentence splitting, the weighted
P/R/F1 over labels (sklearn ``classification_report``'s ``weighted avg``) and the per-report
values of ``radeval.utils.multilabel_prf_per_sample``. No torch here."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MAPPING_FILE = Path(__file__).with_name("leaves_with_statuses_mapping.json")


@lru_cache(maxsize=1)
def label_names() -> tuple[str, ...]:
    """The 163 labels in id order (RadEval's ``leaves_with_statuses_mapping.json``)."""
    mapping = json.loads(MAPPING_FILE.read_text())
    return tuple(label for label, _ in sorted(mapping.items(), key=lambda x: x[1]))


def split_sentences(text: str) -> list[str]:
    """RadEval's ``srr_bert_parse_sentences``: list numbering removed, a period after text that
    lacks one, then NLTK's punkt (english). An empty report becomes ``["."]``."""
    import nltk

    text = re.sub(r"^\s*\d+\.(?!\d)\s*", "", text)
    text = re.sub(r"(\w)\.(\d+)\.(?!\d)\s*", r"\1. ", text)
    text = re.sub(r"(\w)(\d+)\.(?!\d)\s*", r"\1. ", text)
    text = re.sub(r"(\w)\s+\d+\.(?!\d)\s*", r"\1. ", text)
    text = re.sub(r"([.!?])\s*\d+\.(?!\d)\s*", r"\1 ", text)
    text = re.sub(r"\.([A-Z])", r". \1", text)
    if not text.strip().endswith((".", "!", "?")):
        text = text.strip() + "."
    return nltk.sent_tokenize(text)


def weighted_prf(ref: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    """``classification_report(ref, hyp, output_dict=True, zero_division=0)["weighted avg"]``."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(ref, hyp, average="weighted", zero_division=0)
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def per_label(ref: np.ndarray, hyp: np.ndarray) -> dict[str, dict[str, float]]:
    """Labels present in the references or predicted (RadEval's detailed ``srrbert_label_scores``)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(ref, hyp, average=None, zero_division=0)
    return {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": float(s[i])}
            for i, name in enumerate(label_names()) if f[i] > 0 or s[i] > 0}


def per_sample(ref: np.ndarray, hyp: np.ndarray, eps: float = 1e-8) -> dict[str, np.ndarray]:
    """``multilabel_prf_per_sample(ref, hyp)``: per report, mean over labels in ref ∪ hyp of the
    eps-smoothed P/R/F1 of each label; 1.0 when both are empty."""
    tp = ((ref == 1) & (hyp == 1)).astype(int)
    fp = ((ref == 0) & (hyp == 1)).astype(int)
    fn = ((ref == 1) & (hyp == 0)).astype(int)
    p = tp / (tp + fp + eps)
    r = tp / (tp + fn + eps)
    f = (2 * tp) / (2 * tp + fp + fn + eps)
    mask = (ref == 1) | (hyp == 1)
    out: dict[str, Any] = {k: np.ones(len(ref)) for k in ("precision", "recall", "f1")}
    for i in np.flatnonzero(mask.any(axis=1)):
        m = mask[i]
        out["precision"][i], out["recall"][i], out["f1"][i] = p[i][m].mean(), r[i][m].mean(), f[i][m].mean()
    return out


def encode(bits: np.ndarray) -> list[str]:
    """Label vectors as '0'/'1' strings (one per report): a compact, exact per-study statistic."""
    return ["".join("1" if b else "0" for b in row) for row in bits]


def decode(strings: Any) -> np.ndarray:
    """The inverse of ``encode``, vectorised (bootstrap resamples decode thousands of times)."""
    rows = list(strings)
    if not rows:
        return np.zeros((0, len(label_names())), dtype=np.int8)
    flat = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8)
    return (flat == ord("1")).astype(np.int8).reshape(len(rows), -1)
