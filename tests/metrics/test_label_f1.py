"""metrics.common.label_f1 equals sklearn's classification_report (as f1chexbert 0.0.2 calls it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rrg_bench.metrics.common.label_f1 import (
    LABEL_SETS,
    binarize,
    check_codes,
    codes_frame,
    codes_from_frame,
    f1_from_counts,
    f1_report,
    per_label_values,
    per_study_counts,
    summary_values,
)
from rrg_bench.metrics.common.labels import CHEXPERT_5, CHEXPERT_5_INDICES, CHEXPERT_LABELS

sklearn_metrics = pytest.importorskip("sklearn.metrics")

AVG_ROWS = ("micro avg", "macro avg", "weighted avg", "samples avg")


def sklearn_report(y_true: np.ndarray, y_pred: np.ndarray, labels: int) -> dict:
    cols = list(LABEL_SETS[labels])
    names = list(CHEXPERT_LABELS) if labels == 14 else list(CHEXPERT_5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # upstream's default zero_division="warn"
        return sklearn_metrics.classification_report(
            y_true[:, cols].tolist(), y_pred[:, cols].tolist(), target_names=names, output_dict=True)


def assert_reports_equal(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for row, values in theirs.items():
        for field, value in values.items():
            assert ours[row][field] == pytest.approx(float(value), abs=1e-12, rel=0), (row, field)


def random_codes(rng: np.random.Generator, n: int, p: tuple[float, float, float, float]) -> np.ndarray:
    codes = rng.choice(4, size=(n, 14), p=p)
    codes[:, 13] = np.where(codes[:, 13] == 1, 1, 0)  # No Finding: blank/positive only, as CheXbert
    return codes


@pytest.mark.parametrize("policy", ["positive", "negative", "exclude"])
@pytest.mark.parametrize("labels", [14, 5])
@pytest.mark.parametrize("seed,n,p", [
    (0, 200, (0.4, 0.2, 0.3, 0.1)),
    (1, 37, (0.7, 0.1, 0.1, 0.1)),
    (2, 500, (0.9, 0.03, 0.05, 0.02)),  # sparse: some labels without support or predictions
    (3, 5, (0.25, 0.25, 0.25, 0.25)),
])
def test_matches_sklearn_on_random_matrices(policy, labels, seed, n, p):
    rng = np.random.default_rng(seed)
    ref, hyp = random_codes(rng, n, p), random_codes(rng, n, p)
    y_true, y_pred = binarize(ref, hyp, policy)
    assert_reports_equal(f1_report(ref, hyp, policy, labels), sklearn_report(y_true, y_pred, labels))


def test_exclude_policy_is_masking_both_cells():
    ref = np.zeros((4, 14), dtype=int)
    hyp = np.zeros((4, 14), dtype=int)
    j = CHEXPERT_LABELS.index("Edema")
    ref[:, j] = [1, 3, 1, 2]
    hyp[:, j] = [3, 1, 1, 1]
    counts = per_study_counts(ref, hyp, "exclude")
    # rows 0 and 1 are excluded (uncertain on one side); row 2 TP, row 3 FP
    assert counts.tp[:, j].tolist() == [0, 0, 1, 0]
    assert counts.fp[:, j].tolist() == [0, 0, 0, 1]
    assert counts.fn[:, j].tolist() == [0, 0, 0, 0]
    report = f1_from_counts(counts)
    assert report["Edema"]["support"] == 1.0
    assert report["Edema"]["precision"] == 0.5 and report["Edema"]["recall"] == 1.0
    # under "positive" the same cells are all positive decisions
    pos = f1_report(ref, hyp, "positive")
    assert pos["Edema"]["support"] == 3.0 and pos["Edema"]["f1-score"] == pytest.approx(2 * 3 / (2 * 3 + 1))


def test_upstream_reference_example():
    """f1chexbert's own test publishes, for its 5 report pairs: 14-label micro/macro/weighted F1
    0.36364/0.11905/0.27778, 5-label 0.33333/0.2/0.33333, Consolidation F1 1.0, No Finding
    P 0.5 R 1.0, 5-label exact-match pe_accuracy [1,0,0,1,1]. The label vectors below are built
    to be consistent with all of these (the model's actual vectors are not published)."""
    names = list(CHEXPERT_LABELS)

    def vec(*positive: str) -> list[int]:
        return [1 if n in positive else 0 for n in names]

    refs = [vec("No Finding"), vec("Cardiomegaly", "Pleural Effusion"), vec("Consolidation"),
            vec("Lung Opacity"), vec("Support Devices")]
    hyps = [vec("No Finding"), vec("Edema"), vec("Consolidation", "Atelectasis"), vec("No Finding"), vec()]
    r, h = np.array(refs), np.array(hyps)
    five = list(CHEXPERT_5_INDICES)
    assert [int((r[i, five] == h[i, five]).all()) for i in range(5)] == [1, 0, 0, 1, 1]
    rep14, rep5 = f1_report(r, h, "positive", 14), f1_report(r, h, "positive", 5)
    got = [round(rep14[f"{a} avg"]["f1-score"], 5) for a in ("micro", "macro", "weighted")]
    got += [round(rep5[f"{a} avg"]["f1-score"], 5) for a in ("micro", "macro", "weighted")]
    assert got == [0.36364, 0.11905, 0.27778, 0.33333, 0.2, 0.33333]
    assert rep14["Consolidation"]["f1-score"] == 1.0
    assert (rep14["No Finding"]["precision"], rep14["No Finding"]["recall"]) == (0.5, 1.0)
    assert_reports_equal(rep14, sklearn_report(r, h, 14))
    assert_reports_equal(rep5, sklearn_report(r, h, 5))


def test_real_ish_matrices_and_degenerate_cases():
    rng = np.random.default_rng(7)
    # realistic: mostly blank, No Finding frequent, a few positives, rare uncertain
    ref = random_codes(rng, 300, (0.8, 0.08, 0.1, 0.02))
    ref[rng.random(300) < 0.5, 13] = 1
    hyp = ref.copy()
    flip = rng.random(ref.shape) < 0.15
    hyp[flip] = rng.choice(4, size=flip.sum())
    hyp[:, 13] = np.where(hyp[:, 13] == 1, 1, 0)
    for policy in ("positive", "negative", "exclude"):
        y_true, y_pred = binarize(ref, hyp, policy)
        for labels in (14, 5):
            assert_reports_equal(f1_report(ref, hyp, policy, labels), sklearn_report(y_true, y_pred, labels))
    zeros = np.zeros((10, 14), dtype=int)
    for a, b in ((zeros, zeros), (zeros, ref[:10]), (ref[:10], zeros)):
        y_true, y_pred = binarize(a, b, "positive")
        assert_reports_equal(f1_report(a, b, "positive"), sklearn_report(y_true, y_pred, 14))
    single = ref[:1]
    y_true, y_pred = binarize(single, hyp[:1], "positive")
    assert_reports_equal(f1_report(single, hyp[:1], "positive"), sklearn_report(y_true, y_pred, 14))


def test_resampling_is_row_selection():
    rng = np.random.default_rng(3)
    ref, hyp = random_codes(rng, 80, (0.5, 0.2, 0.2, 0.1)), random_codes(rng, 80, (0.5, 0.2, 0.2, 0.1))
    counts = per_study_counts(ref, hyp, "positive")
    rows = rng.integers(0, 80, size=80)
    assert f1_from_counts(counts.take(rows)) == f1_report(ref[rows], hyp[rows], "positive")
    five = counts.select(5)
    assert five.label_names == CHEXPERT_5 and five.label_indices == CHEXPERT_5_INDICES
    assert f1_from_counts(five, 5) == f1_from_counts(counts, 5)
    flat = counts.to_dict()
    assert len(flat) == 3 * 14 and flat["tp[Edema]"].tolist() == counts.tp[:, 4].tolist()


def test_frame_round_trip_and_summary():
    rng = np.random.default_rng(5)
    ref, hyp = random_codes(rng, 12, (0.5, 0.2, 0.2, 0.1)), random_codes(rng, 12, (0.5, 0.2, 0.2, 0.1))
    ids = [f"s{i}" for i in range(12)]
    frame = codes_frame(ids, ref, hyp)
    assert list(frame.index) == ids and frame.shape == (12, 28)
    r2, h2 = codes_from_frame(frame.iloc[::-1])
    assert (r2 == ref[::-1]).all() and (h2 == hyp[::-1]).all()
    values = summary_values(ref, hyp, "exclude", "x_f1")
    assert set(values) == {f"x_f1[labels={n},avg={a},uncertain=exclude]"
                           for n in (14, 5) for a in ("micro", "macro", "weighted")}
    expected = f1_report(ref, hyp, "exclude", 5)["macro avg"]["f1-score"]
    assert values["x_f1[labels=5,avg=macro,uncertain=exclude]"] == expected
    per_label = per_label_values(ref, hyp, "positive")
    assert list(per_label) == list(CHEXPERT_LABELS)
    assert set(per_label["Edema"]) == {"precision", "recall", "f1", "support"}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="shape"):
        check_codes(np.zeros((3, 13)))
    bad = np.zeros((3, 14), dtype=int)
    bad[2, 4] = 7
    with pytest.raises(ValueError, match="row 2, label 'Edema' has code 7"):
        check_codes(bad)
    with pytest.raises(ValueError, match="policy"):
        binarize(np.zeros((1, 14)), np.zeros((1, 14)), "maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ in shape"):
        binarize(np.zeros((1, 14)), np.zeros((2, 14)), "positive")
    with pytest.raises(ValueError, match="labels must be"):
        f1_report(np.zeros((1, 14)), np.zeros((1, 14)), "positive", 7)
