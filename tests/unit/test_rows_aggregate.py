"""``Scorer.rows_aggregate`` overrides give ``aggregate(stats.iloc[rows])`` bit for bit, so bootstrap CIs and
paired tests are the same numbers with or without them (they only skip per-resample checking and reshaping)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rrg_bench.api.scorer import Scorer, ScoringContext
from rrg_bench.metrics.chexbert.scorer import CheXbertScorer
from rrg_bench.metrics.chexpert_rules.scorer import CheXpertRulesScorer
from rrg_bench.metrics.common.label_f1 import codes_frame
from rrg_bench.metrics.nlg.java import java_executable
from rrg_bench.metrics.nlg.scorer import NLGScorer
from rrg_bench.registry import registry
from rrg_bench.stats import approximate_randomisation, bootstrap_ci, paired_bootstrap

#: every built-in scorer that overrides rows_aggregate, with the policies its columns depend on
COVERED = {"nlg", "chexpert_rules", "chexbert"}


def _same(a: dict[str, float], b: dict[str, float]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert (math.isnan(a[key]) and math.isnan(b[key])) or a[key] == b[key], (key, a[key], b[key])


def _selections(n: int, seed: int) -> list[np.ndarray]:
    """Bootstrap resamples, the table in and out of order, and tiny selections (1 and 2 rows, repeats)."""
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, n, size=n) for _ in range(40)]
    return [*picks, np.arange(n), np.arange(n)[::-1], np.array([0]), np.array([n - 1, n - 1]),
            rng.integers(0, n, size=max(1, n // 7))]


def _check(scorer: Scorer, stats: pd.DataFrame, seed: int = 0) -> None:
    of_rows = scorer.rows_aggregate(stats)
    for rows in _selections(len(stats), seed):
        _same(of_rows(rows), scorer.aggregate(stats.iloc[rows]))
    plain = bootstrap_ci(scorer.aggregate, stats, n_boot=60, seed=seed)
    assert bootstrap_ci(scorer.aggregate, stats, n_boot=60, seed=seed, prepare=scorer.rows_aggregate) == plain


def test_every_override_is_covered_here():
    overriding = {name for name in registry("metrics").names()
                  if isinstance(cls := registry("metrics").get(name), type) and issubclass(cls, Scorer)
                  and cls.rows_aggregate is not Scorer.rows_aggregate}
    assert overriding == COVERED


def _random_codes(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # mostly blank, as real reports: codes 0 (blank) .. 3 (uncertain), a few labels never positive
    ref = rng.choice(4, size=(n, 14), p=[0.7, 0.15, 0.1, 0.05])
    hyp = np.where(rng.random((n, 14)) < 0.6, ref, rng.choice(4, size=(n, 14), p=[0.7, 0.15, 0.1, 0.05]))
    hyp[:, 3] = 0
    return codes_frame([f"s{i}" for i in range(n)], ref, hyp)


@pytest.mark.parametrize("policy", ["positive", "negative", "exclude"])
@pytest.mark.parametrize("n", [1, 7, 590, 4000])
def test_label_f1_scorers(policy, n):
    stats = _random_codes(n, seed=n)
    for scorer in (CheXpertRulesScorer(uncertain=policy), CheXbertScorer(uncertain=policy)):
        _check(scorer, stats, seed=n)


def test_label_f1_checks_the_table_once_and_still_refuses_a_bad_one():
    stats = _random_codes(50, seed=1)
    stats.iloc[3, 2] = 7
    with pytest.raises(ValueError, match="row 3"):
        CheXpertRulesScorer().rows_aggregate(stats)
    with pytest.raises(Exception, match="chexbert: per-study statistics unusable"):
        CheXbertScorer().rows_aggregate(stats)


@pytest.fixture(scope="module")
def nlg_stats(iu_source: Path) -> pd.DataFrame:
    if java_executable() is None:
        pytest.skip("needs Java")
    ann = json.loads((iu_source / "annotation.json").read_text())
    refs = [e["report"] for e in ann["test"][:150]]
    hyps = [e["report"] for e in ann["train"][:150]]
    return NLGScorer().score([f"s{i}" for i in range(150)], hyps, refs, ScoringContext()).stats


def test_nlg_on_real_statistics_and_after_a_parquet_round_trip(nlg_stats, tmp_path):
    _check(NLGScorer(), nlg_stats)
    nlg_stats.to_parquet(tmp_path / "nlg.parquet")  # as a record ships them and `bench verify` reads them
    _check(NLGScorer(), pd.read_parquet(tmp_path / "nlg.parquet"), seed=3)
    without_meteor = nlg_stats[[c for c in nlg_stats.columns if not c.startswith("meteor")]]
    _check(NLGScorer(), without_meteor, seed=4)


def test_paired_tests_are_the_same_numbers_with_the_override(nlg_stats):
    scorer = NLGScorer()
    other = nlg_stats.sample(frac=1.0, random_state=0)  # B: the same studies in another order, other values
    other = other.assign(rouge_l=other["rouge_l"].to_numpy()[::-1], cider_d=other["cider_d"] * 0.9)
    plain = paired_bootstrap(scorer.aggregate, nlg_stats, other, n_boot=40, seed=5)
    assert paired_bootstrap(scorer.aggregate, nlg_stats, other, n_boot=40, seed=5,
                            prepare=scorer.rows_aggregate) == plain
    plain_ar = approximate_randomisation(scorer.aggregate, nlg_stats, other, n_trials=40, seed=5)
    assert approximate_randomisation(scorer.aggregate, nlg_stats, other, n_trials=40, seed=5,
                                     prepare=scorer.rows_aggregate) == plain_ar


def test_a_record_check_recomputes_cis_by_the_defining_path(tmp_path, monkeypatch):
    """`bench leaderboard add` / board builds recompute CIs with ``aggregate`` per resample, not with the
    ``rows_aggregate`` that wrote the record: an override that drifts from ``aggregate`` is caught there."""
    from typer.testing import CliRunner

    from rrg_bench.cli import app
    from rrg_bench.records import load_any
    from rrg_bench.records.recompute import recompute_problems

    def drifting(self, stats):
        honest = Scorer.rows_aggregate(self, stats)
        return lambda rows: {k: v + 1e-3 for k, v in honest(rows).items()}

    monkeypatch.setattr(CheXpertRulesScorer, "rows_aggregate", drifting)
    args = ["run", "--model", "random_report", "--runs-dir", str(tmp_path), "--metrics", "chexpert_rules",
            "--n-boot", "50", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    problems = recompute_problems(load_any(next(tmp_path.rglob("results.json"))))
    assert problems and all(" CI " in p for p in problems)
    assert len(problems) == len(CheXpertRulesScorer().columns())  # every column's interval, no value
