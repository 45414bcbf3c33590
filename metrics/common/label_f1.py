"""CheXpert-label F1 from per-study label codes, equal to scikit-learn's classification_report.

Why not call sklearn: bootstrap CIs and paired tests resample *studies* a thousand times, and
upstream (f1chexbert 0.0.2) feeds whole label matrices to ``classification_report``. Here
every value is a function of per-study TP/FP/FN indicator rows, so a resample is a row
selection plus a sum; a parity test shows the result equals sklearn's to 1e-12.

Shared by every labeler that emits ``common.labels`` codes (CheXbert, the offline rule
labeler); each scorer keeps its own metric-id prefix.

Uncertainty policies (how a 4-class code becomes a binary "positive" decision):

- ``positive`` -- f1chexbert's ``rrg`` mode: POSITIVE and UNCERTAIN count as positive,
  BLANK and NEGATIVE as not positive.
- ``negative`` -- only POSITIVE counts; UNCERTAIN is treated like NEGATIVE.
- ``exclude``  -- for label j of study i, the cell is left out of label j's counts when the
  reference *or* the hypothesis code is UNCERTAIN: it adds nothing to TP, FP, FN or the
  support of that label (nor to the micro totals, nor to that study's ``samples`` row).
  The remaining cells are binarised as in ``negative``. Because precision, recall, F1 and
  support never use true negatives, this is exactly sklearn on matrices whose excluded cells
  are set to 0 in both reference and hypothesis (the parity test checks this form).

Averages follow sklearn with ``zero_division`` at its default ("warn", i.e. 0.0), which is
what upstream uses: a 0/0 precision, recall or F1 is 0.0, and such labels still count in
the macro mean. ``weighted`` weights per-label F1 by support (falling back to the plain mean
when no label has support, as sklearn does); ``micro`` divides pooled counts; ``samples`` is
the mean of per-study F1 over labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from rrg_bench.api.scorer import Column
from rrg_bench.metrics.common.labels import CHEXPERT_5_INDICES, CHEXPERT_LABELS, POSITIVE, UNCERTAIN

if TYPE_CHECKING:
    import pandas as pd

Policy = Literal["positive", "negative", "exclude"]
POLICIES: tuple[str, ...] = ("positive", "negative", "exclude")
AVERAGES: tuple[str, ...] = ("micro", "macro", "weighted")
LABEL_SETS: dict[int, tuple[int, ...]] = {14: tuple(range(len(CHEXPERT_LABELS))), 5: CHEXPERT_5_INDICES}
_N = len(CHEXPERT_LABELS)


def check_codes(codes: object, what: str = "codes") -> np.ndarray:
    """An (n, 14) int8 array of codes in {0,1,2,3}; ValueError naming the first bad cell."""
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.shape[1] != _N:
        raise ValueError(f"{what}: expected shape (n, {_N}), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{what}: label codes must be integers 0..3")
    arr = arr.astype(np.int64, copy=False)
    bad = np.argwhere((arr < 0) | (arr > UNCERTAIN))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"{what}: row {i}, label {CHEXPERT_LABELS[j]!r} has code {arr[i, j]}, expected 0..3")
    return arr.astype(np.int8)


def binarize(ref_codes: object, hyp_codes: object, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) 0/1 int8 matrices under ``policy``; ``exclude`` zeroes both cells."""
    ref = check_codes(ref_codes, "reference codes")
    hyp = check_codes(hyp_codes, "hypothesis codes")
    if ref.shape != hyp.shape:
        raise ValueError(f"reference codes {ref.shape} and hypothesis codes {hyp.shape} differ in shape")
    positive: tuple[int, ...]
    if policy == "positive":
        positive = (POSITIVE, UNCERTAIN)
    elif policy in ("negative", "exclude"):
        positive = (POSITIVE,)
    else:
        raise ValueError(f"unknown uncertainty policy {policy!r}; expected one of {POLICIES}")
    y_true = np.isin(ref, positive).astype(np.int8)
    y_pred = np.isin(hyp, positive).astype(np.int8)
    if policy == "exclude":
        kept = (ref != UNCERTAIN) & (hyp != UNCERTAIN)
        y_true &= kept
        y_pred &= kept
    return y_true, y_pred


@dataclass(frozen=True)
class LabelCounts:
    """Per-study 0/1 indicators of true positive, false positive and false negative per label.

    Rows are studies (resample with ``take``), columns are ``label_indices`` into
    ``CHEXPERT_LABELS``. Sums over rows are the sufficient statistics of every F1 here.
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    label_indices: tuple[int, ...] = LABEL_SETS[14]

    @property
    def n_studies(self) -> int:
        return int(self.tp.shape[0])

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(CHEXPERT_LABELS[j] for j in self.label_indices)

    def take(self, rows: Sequence[int] | np.ndarray) -> LabelCounts:
        """The counts of the given study rows (repeats allowed: a bootstrap resample)."""
        idx = np.asarray(rows, dtype=np.int64)
        return LabelCounts(self.tp[idx], self.fp[idx], self.fn[idx], self.label_indices)

    def select(self, labels: int | Sequence[int]) -> LabelCounts:
        """The same studies restricted to a label set (14, 5 or explicit 14-label indices)."""
        wanted = resolve_labels(labels)
        missing = [j for j in wanted if j not in self.label_indices]
        if missing:
            raise ValueError(f"labels {[CHEXPERT_LABELS[j] for j in missing]} are not in these counts")
        cols = [self.label_indices.index(j) for j in wanted]
        return LabelCounts(self.tp[:, cols], self.fp[:, cols], self.fn[:, cols], tuple(wanted))

    def to_dict(self) -> dict[str, np.ndarray]:
        """Flat columns ``tp[Label]``, ``fp[Label]``, ``fn[Label]`` (e.g. for a DataFrame)."""
        out: dict[str, np.ndarray] = {}
        for kind, arr in (("tp", self.tp), ("fp", self.fp), ("fn", self.fn)):
            for c, name in enumerate(self.label_names):
                out[f"{kind}[{name}]"] = arr[:, c]
        return out


def resolve_labels(labels: int | Sequence[int]) -> tuple[int, ...]:
    """14 -> all labels, 5 -> the CheXpert five, or an explicit sequence of label indices."""
    if isinstance(labels, (int, np.integer)):
        if int(labels) not in LABEL_SETS:
            raise ValueError(f"labels must be 14, 5 or a sequence of label indices, got {labels}")
        return LABEL_SETS[int(labels)]
    idx = tuple(int(j) for j in labels)
    if not idx or any(j < 0 or j >= _N for j in idx) or len(set(idx)) != len(idx):
        raise ValueError(f"invalid label indices {idx}")
    return idx


def per_study_counts(ref_codes: object, hyp_codes: object, policy: Policy) -> LabelCounts:
    """TP/FP/FN indicators (n x 14) of each study under ``policy`` (references are y_true)."""
    y_true, y_pred = binarize(ref_codes, hyp_codes, policy)
    return LabelCounts(
        tp=(y_true & y_pred).astype(np.int8),
        fp=((1 - y_true) & y_pred).astype(np.int8),
        fn=(y_true & (1 - y_pred)).astype(np.int8),
    )


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as float64, 0.0 where the denominator is 0 (sklearn "warn")."""
    denominator = np.asarray(denominator, dtype=np.float64).copy()
    zero = denominator == 0
    denominator[zero] = 1.0
    result = np.asarray(numerator, dtype=np.float64) / denominator
    result[zero] = 0.0
    return result


def _prf(tp: np.ndarray, pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 exactly as sklearn's precision_recall_fscore_support (beta=1)."""
    precision = _divide(tp, pred)
    recall = _divide(tp, true)
    f1 = _divide(2.0 * np.asarray(tp, dtype=np.float64),
                 1.0 * np.asarray(true, dtype=np.float64) + np.asarray(pred, dtype=np.float64))
    return precision, recall, f1


def _row(p: float, r: float, f: float, support: float) -> dict[str, float]:
    return {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": float(support)}


def f1_from_counts(counts: LabelCounts, labels: int | Sequence[int] = 14, *,
                   samples: bool = True) -> dict[str, dict[str, float]]:
    """A ``classification_report(output_dict=True)``-shaped dict for the chosen label set.

    Keys: each label name, ``micro avg``, ``macro avg``, ``weighted avg``, ``samples avg``
    (left out with ``samples=False``: the per-study average is the one part whose cost grows
    with the studies beyond a sum, and the reported columns do not use it); each value has
    ``precision``, ``recall``, ``f1-score`` and ``support`` (floats, as sklearn 1.7 returns them).
    """
    c = counts.select(labels)
    tp = c.tp.sum(axis=0, dtype=np.int64)
    fp = c.fp.sum(axis=0, dtype=np.int64)
    fn = c.fn.sum(axis=0, dtype=np.int64)
    pred, true = tp + fp, tp + fn
    precision, recall, f1 = _prf(tp, pred, true)
    report = {name: _row(precision[k], recall[k], f1[k], true[k]) for k, name in enumerate(c.label_names)}
    total = float(true.sum())

    mp, mr, mf = _prf(tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True))
    report["micro avg"] = _row(mp[0], mr[0], mf[0], total)
    report["macro avg"] = _row(np.nanmean(precision), np.nanmean(recall), np.nanmean(f1), total)
    if true.sum() > 0:
        wp, wr, wf = (np.average(v, weights=true) for v in (precision, recall, f1))
    else:  # sklearn: all weights zero -> unweighted mean
        wp, wr, wf = (np.average(v) for v in (precision, recall, f1))
    report["weighted avg"] = _row(wp, wr, wf, total)
    if not samples:
        return report

    s_tp = c.tp.sum(axis=1, dtype=np.int64)
    s_pred = s_tp + c.fp.sum(axis=1, dtype=np.int64)
    s_true = s_tp + c.fn.sum(axis=1, dtype=np.int64)
    sp, sr, sf = _prf(s_tp, s_pred, s_true)
    if c.n_studies:
        report["samples avg"] = _row(np.nanmean(sp), np.nanmean(sr), np.nanmean(sf), total)
    else:
        report["samples avg"] = _row(np.nan, np.nan, np.nan, total)
    return report


def f1_report(ref_codes: object, hyp_codes: object, policy: Policy,
              labels: int | Sequence[int] = 14) -> dict[str, dict[str, float]]:
    """``f1_from_counts(per_study_counts(ref, hyp, policy), labels)`` in one call."""
    return f1_from_counts(per_study_counts(ref_codes, hyp_codes, policy), labels)


# ---- metric ids and per-study statistics shared by the labelers' scorers -----------------

def column_id(prefix: str, labels: int, avg: str, policy: str) -> str:
    """Canonical column id, e.g. ``chexbert_f1[labels=14,avg=micro,uncertain=positive]``."""
    return f"{prefix}[labels={labels},avg={avg},uncertain={policy}]"


def f1_columns(prefix: str, policy: str, display: Callable[[int, str], str],
               convention: Callable[[int, str], str]) -> list[Column]:
    """The columns of a labeler's F1 scorer: label sets 14 then 5, each with every average;
    ``display`` and ``convention`` word them for that labeler, from (labels, average)."""
    return [Column(id=column_id(prefix, labels, avg, policy), display=display(labels, avg),
                   convention=convention(labels, avg))
            for labels in (14, 5) for avg in AVERAGES]


def summary_values(ref_codes: object, hyp_codes: object, policy: Policy, prefix: str) -> dict[str, float]:
    """Every column value: labels 14 and 5 x micro/macro/weighted F1 under ``policy``."""
    return _summary(per_study_counts(ref_codes, hyp_codes, policy), policy, prefix)


def rows_summary(ref_codes: object, hyp_codes: object, policy: Policy,
                 prefix: str) -> Callable[[np.ndarray], dict[str, float]]:
    """``summary_values`` of row selections (a scorer's ``rows_aggregate``): the codes are checked and
    turned into TP/FP/FN indicators once; a selection takes their rows and sums them. Equal to
    ``summary_values(ref_codes[rows], hyp_codes[rows], ...)`` bit for bit: the indicators are
    row-wise and their sums are integers."""
    counts = per_study_counts(ref_codes, hyp_codes, policy)
    return lambda rows: _summary(counts.take(rows), policy, prefix)


def _summary(counts: LabelCounts, policy: Policy, prefix: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for labels in (14, 5):
        report = f1_from_counts(counts, labels, samples=False)
        for avg in AVERAGES:
            values[column_id(prefix, labels, avg, policy)] = report[f"{avg} avg"]["f1-score"]
    return values


def per_label_values(ref_codes: object, hyp_codes: object, policy: Policy) -> dict[str, dict[str, float]]:
    """Per-label precision, recall, f1 and support over the 14 labels (ScoreResult.per_label)."""
    report = f1_report(ref_codes, hyp_codes, policy, 14)
    return {name: {"precision": report[name]["precision"], "recall": report[name]["recall"],
                   "f1": report[name]["f1-score"], "support": report[name]["support"]}
            for name in CHEXPERT_LABELS}


REF_COLUMNS: tuple[str, ...] = tuple(f"ref[{name}]" for name in CHEXPERT_LABELS)
HYP_COLUMNS: tuple[str, ...] = tuple(f"hyp[{name}]" for name in CHEXPERT_LABELS)


def codes_frame(study_ids: Sequence[str], ref_codes: object, hyp_codes: object) -> pd.DataFrame:
    """Per-study statistics table: ``ref[Label]`` and ``hyp[Label]`` int8 codes, index study_id."""
    import pandas as pd

    ref = check_codes(ref_codes, "reference codes")
    hyp = check_codes(hyp_codes, "hypothesis codes")
    if not (len(study_ids) == ref.shape[0] == hyp.shape[0]):
        raise ValueError(f"{len(study_ids)} study ids but {ref.shape[0]} reference and {hyp.shape[0]} hypothesis rows")
    data = {col: ref[:, j] for j, col in enumerate(REF_COLUMNS)}
    data.update({col: hyp[:, j] for j, col in enumerate(HYP_COLUMNS)})
    return pd.DataFrame(data, index=pd.Index(list(study_ids), name="study_id"))


def codes_from_frame(stats: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(ref_codes, hyp_codes) back from a ``codes_frame`` table (any subset or resample of rows)."""
    missing = [c for c in REF_COLUMNS + HYP_COLUMNS if c not in stats.columns]
    if missing:
        raise ValueError(f"per-study label statistics lack columns {missing[:3]}{'...' if len(missing) > 3 else ''}")
    ref = stats.loc[:, list(REF_COLUMNS)].to_numpy()
    hyp = stats.loc[:, list(HYP_COLUMNS)].to_numpy()
    return check_codes(ref, "reference codes"), check_codes(hyp, "hypothesis codes")


def label_samples(stats: pd.DataFrame, spec: str, policy: Policy) -> pd.DataFrame:
    """Per study: the labels each side calls positive under ``policy``, and the share of the 14
    labels on which the two sides agree (``samples.parquet``; derived from the statistics)."""
    import pandas as pd

    ref_codes, hyp_codes = codes_from_frame(stats)
    y_true, y_pred = binarize(ref_codes, hyp_codes, policy)
    names = np.array(CHEXPERT_LABELS)

    def listed(matrix: np.ndarray) -> list[str]:
        return ["; ".join(names[row.astype(bool)]) for row in matrix]

    return pd.DataFrame({f"{spec}:reference_labels": listed(y_true), f"{spec}:prediction_labels": listed(y_pred),
                         f"{spec}:agreement": (y_true == y_pred).mean(axis=1)}, index=stats.index)
