"""Stage-1 training labels: our own CheXpert labelers run on the *train* reports.

The authors trained on MIMIC's CheXpert label files; the harness labels the train split's reports
itself, with CheXbert when its weights are present (``metrics.chexbert``) and otherwise the
offline rule labeler (``metrics.chexpert_rules``). Test references are never labelled here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from rrg_bench.errors import WeightsUnavailable
from rrg_bench.metrics.common.labels import POSITIVE, UNCERTAIN

LabelerChoice = Literal["auto", "chexbert", "chexpert_rules"]


def label_reports(texts: Sequence[str], labeler: LabelerChoice = "auto", device: str = "cpu"
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """(n, 14) int8 CheXpert codes (0 blank, 1 positive, 2 negative, 3 uncertain) and the labeler's identity."""
    if labeler in ("auto", "chexbert"):
        from rrg_bench.metrics.chexbert.scorer import CheXbertScorer

        scorer = CheXbertScorer()
        reason = scorer.unavailable_reason()
        if reason is None:
            from rrg_bench.hashing import sha256_file_memo as file_sha256

            net = scorer.labeler(device)
            unique = sorted(set(texts))
            codes = dict(zip(unique, net.label(unique)))
            return (np.stack([codes[t] for t in texts]) if texts else np.zeros((0, 14), np.int8),
                    {"labeler": "chexbert", "checkpoint_sha256": file_sha256(net.checkpoint)})
        if labeler == "chexbert":
            raise WeightsUnavailable(f"am_mrg labeler=chexbert: {reason}")
    from rrg_bench.metrics.chexpert_rules.labeler import LABELER_VERSION
    from rrg_bench.metrics.chexpert_rules.labeler import label_reports as rule_labels

    return rule_labels(list(texts)), {"labeler": "chexpert_rules", "version": LABELER_VERSION}


def binary_labels(codes: np.ndarray, uncertain: Literal["positive", "negative"] = "positive") -> np.ndarray:
    """Codes -> {0, 1} targets of the 2-way heads: positive = 1, uncertain per ``uncertain``, else 0."""
    positive = codes == POSITIVE
    if uncertain == "positive":
        positive |= codes == UNCERTAIN
    return positive.astype(np.int64)
