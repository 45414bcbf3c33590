"""bench.stats: seeded percentile bootstrap, paired bootstrap, approximate randomisation."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from rrg_bench.errors import UsageError
from rrg_bench.stats import PairedResult, align_by_study, approximate_randomisation, bootstrap_ci, paired_bootstrap


def table(values: dict[str, np.ndarray], prefix: str = "s") -> pd.DataFrame:
    n = len(next(iter(values.values())))
    return pd.DataFrame(values, index=pd.Index([f"{prefix}{i:04d}" for i in range(n)], name="study_id"))


def mean_agg(stats: pd.DataFrame) -> dict[str, float]:
    return {"mean_x": float(stats["x"].to_numpy().mean())}


def ratio_agg(stats: pd.DataFrame) -> dict[str, float]:
    """A corpus-level statistic (like BLEU's summed counts): not a mean of per-row values."""
    return {"mean_x": float(stats["x"].to_numpy().mean()),
            "ratio": float(stats["hit"].to_numpy().sum() / stats["total"].to_numpy().sum())}


@pytest.fixture(scope="module")
def normal_rows() -> pd.DataFrame:
    rng = np.random.default_rng(123)
    n = 400
    total = rng.integers(5, 30, n)
    return table({"x": rng.normal(1.0, 1.0, n), "hit": rng.binomial(total, 0.4), "total": total})


def test_bootstrap_is_deterministic_per_seed(normal_rows):
    a = bootstrap_ci(ratio_agg, normal_rows, n_boot=200, seed=5)
    b = bootstrap_ci(ratio_agg, normal_rows, n_boot=200, seed=5)
    c = bootstrap_ci(ratio_agg, normal_rows, n_boot=200, seed=6)
    assert a == b
    assert a != c
    assert set(a) == {"mean_x", "ratio"}
    full = ratio_agg(normal_rows)
    for key, (lo, hi) in a.items():
        assert lo < full[key] < hi


def test_bootstrap_interval_matches_the_normal_theory_width(normal_rows):
    lo, hi = bootstrap_ci(mean_agg, normal_rows, n_boot=1000, seed=0)["mean_x"]
    x = normal_rows["x"].to_numpy()
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert (hi - lo) == pytest.approx(2 * 1.959964 * se, rel=0.15)
    assert (lo + hi) / 2 == pytest.approx(x.mean(), abs=0.3 * se)


def test_bootstrap_coverage_is_close_to_nominal():
    rng = np.random.default_rng(2024)
    covered, trials = 0, 50
    for t in range(trials):
        rows = table({"x": rng.exponential(1.0, 150)})  # skewed on purpose; true mean 1
        lo, hi = bootstrap_ci(mean_agg, rows, n_boot=200, seed=t)["mean_x"]
        covered += lo <= 1.0 <= hi
    assert 0.82 <= covered / trials <= 1.0


def test_bootstrap_alpha_widens_and_narrows(normal_rows):
    wide = bootstrap_ci(mean_agg, normal_rows, n_boot=300, seed=1, alpha=0.01)["mean_x"]
    narrow = bootstrap_ci(mean_agg, normal_rows, n_boot=300, seed=1, alpha=0.5)["mean_x"]
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        bootstrap_ci(mean_agg, normal_rows, alpha=1.5)


def test_bootstrap_skips_nan_resamples_and_reports_all_nan():
    rows = table({"x": np.r_[np.ones(3), np.zeros(47)]})

    def agg(stats):
        hits = stats["x"].sum()
        return {"rate_given_hit": float(hits / hits) if hits else math.nan, "never": math.nan}

    ci = bootstrap_ci(agg, rows, n_boot=200, seed=0)
    assert ci["rate_given_hit"] == (1.0, 1.0)
    assert all(math.isnan(v) for v in ci["never"])


def test_identical_systems_have_zero_delta_and_p_one(normal_rows):
    paired = paired_bootstrap(ratio_agg, normal_rows, normal_rows.copy(), n_boot=200, seed=0)
    ar = approximate_randomisation(ratio_agg, normal_rows, normal_rows.copy(), n_trials=200, seed=0)
    for key in ("mean_x", "ratio"):
        res = paired[key]
        assert isinstance(res, PairedResult)
        assert res.delta == 0.0 and res.ci95 == (0.0, 0.0) and res.p_value == 1.0
        assert ar[key] == 1.0


def test_a_degraded_system_is_significantly_worse(normal_rows):
    rng = np.random.default_rng(9)
    worse = normal_rows.copy()
    worse["x"] = worse["x"] - 0.3 + rng.normal(0, 0.2, len(worse))
    worse["hit"] = np.maximum(worse["hit"] - rng.integers(0, 4, len(worse)), 0)
    paired = paired_bootstrap(ratio_agg, normal_rows, worse, n_boot=500, seed=0)
    ar = approximate_randomisation(ratio_agg, normal_rows, worse, n_trials=500, seed=0)
    full_a, full_b = ratio_agg(normal_rows), ratio_agg(worse)
    for key in ("mean_x", "ratio"):
        res = paired[key]
        assert res.a == full_a[key] and res.b == full_b[key]
        assert res.delta == pytest.approx(full_b[key] - full_a[key], abs=1e-15) and res.delta < 0
        assert res.ci95[1] < 0
        assert res.p_value == pytest.approx(2 / 501)  # no resample crossed zero
        assert ar[key] == pytest.approx(1 / 501)  # no random swap was as extreme


def test_tests_are_not_anti_conservative_under_the_null():
    """Two noisy but exchangeable systems: few p-values below 0.05."""
    rng = np.random.default_rng(77)
    low_paired = low_ar = 0
    trials = 25
    for t in range(trials):
        base = rng.normal(0, 1, 100)
        a = table({"x": base + rng.normal(0, 1, 100)})
        b = table({"x": base + rng.normal(0, 1, 100)})
        low_paired += paired_bootstrap(mean_agg, a, b, n_boot=150, seed=t)["mean_x"].p_value < 0.05
        low_ar += approximate_randomisation(mean_agg, a, b, n_trials=150, seed=t)["mean_x"] < 0.05
    assert low_paired / trials <= 0.2
    assert low_ar / trials <= 0.2


def test_paired_tests_align_by_study_id(normal_rows):
    rng = np.random.default_rng(3)
    other = normal_rows.copy()
    other["x"] = other["x"] + rng.normal(0.05, 0.5, len(other))
    shuffled = other.sample(frac=1.0, random_state=1)
    assert paired_bootstrap(ratio_agg, normal_rows, other, n_boot=100, seed=2) == \
        paired_bootstrap(ratio_agg, normal_rows, shuffled, n_boot=100, seed=2)
    assert approximate_randomisation(ratio_agg, normal_rows, other, n_trials=100, seed=2) == \
        approximate_randomisation(ratio_agg, normal_rows, shuffled, n_trials=100, seed=2)


def test_different_or_duplicated_studies_are_refused(normal_rows):
    with pytest.raises(UsageError, match="different studies.*1 only in A.*1 only in B"):
        align_by_study(normal_rows, normal_rows.rename(index={"s0000": "zzz"}))
    with pytest.raises(UsageError, match="different studies"):
        paired_bootstrap(mean_agg, normal_rows, normal_rows.iloc[:-1], n_boot=10)
    with pytest.raises(UsageError, match="more than once"):
        approximate_randomisation(mean_agg, normal_rows, normal_rows.iloc[[0, 0, 1]], n_trials=10)
    with pytest.raises(ValueError, match="no studies"):
        bootstrap_ci(mean_agg, normal_rows.iloc[:0])


def nlg_like_stats(n: int, seed: int, quality: float = 0.4) -> pd.DataFrame:
    """Plausible NLGScorer statistics (random, internally consistent) without running Java."""
    from rrg_bench.metrics.nlg.maths import BLEU_COLS, METEOR_COLS

    rng = np.random.default_rng(seed)
    testlen = rng.integers(10, 60, n)
    cols: dict[str, np.ndarray] = {"bleu_testlen": testlen, "bleu_reflen": rng.integers(10, 60, n)}
    prev = testlen
    for k in range(1, 5):
        guess = np.maximum(testlen - k + 1, 0)
        cols[f"bleu_guess_{k}"] = guess
        prev = np.minimum(rng.binomial(guess, quality ** k), prev)
        cols[f"bleu_correct_{k}"] = prev
    met = np.zeros((n, len(METEOR_COLS)))
    met[:, 0], met[:, 1] = testlen, cols["bleu_reflen"]
    met[:, 2], met[:, 3] = testlen // 3, cols["bleu_reflen"] // 3
    exact = np.minimum(cols["bleu_correct_1"], np.minimum(met[:, 0], met[:, 1]))
    met[:, 4] = met[:, 5] = np.ceil(exact * 0.6)
    met[:, 6] = met[:, 7] = exact - np.ceil(exact * 0.6)
    met[:, 20] = np.maximum(np.ceil(exact / 3), 1)
    met[:, 21] = met[:, 22] = exact
    cols.update({c: met[:, i] for i, c in enumerate(METEOR_COLS)})
    cols["meteor"] = rng.random(n)
    cols["rouge_l"] = rng.random(n) * quality
    cols["cider_d"] = rng.random(n) * quality
    frame = table({c: np.asarray(cols[c], dtype=np.float64) for c in (*BLEU_COLS, "meteor", *METEOR_COLS,
                                                                      "rouge_l", "cider_d")})
    return frame


def test_nlg_aggregate_is_fast_enough_for_1000_resamples():
    from rrg_bench.metrics.nlg import NLGScorer

    scorer = NLGScorer(tok="r2gen")
    a, b = nlg_like_stats(590, 0), nlg_like_stats(590, 0, quality=0.3)
    start = time.perf_counter()
    ci = bootstrap_ci(scorer.aggregate, a, n_boot=1000, seed=0)
    elapsed = time.perf_counter() - start
    assert set(ci) == {c.id for c in scorer.columns()}
    assert elapsed < 10, f"1000 NLG resamples took {elapsed:.1f} s"
    paired = paired_bootstrap(scorer.aggregate, a, b, n_boot=200, seed=0)
    assert paired["bleu4[tok=r2gen]"].delta < 0 and paired["bleu4[tok=r2gen]"].p_value < 0.05
