"""The regression gate: paired tests from per-study stats, tolerances, refusal to compare unlike numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.leaderboard_records import make_record, toy_factory
from rrg_bench.compare import StatsUnavailable, compare_records, load
from rrg_bench.errors import BenchError, RegressionFound, UsageError
from rrg_bench.tolerances import Tolerances, find_regressions, load_tolerances, raise_on_regressions

BASE = [1] * 60 + [0] * 20  # 80 studies, accuracy 0.75


def _cmp(base: Path, new: Path, **kw):
    kw.setdefault("n_boot", 300)
    kw.setdefault("n_trials", 300)
    return compare_records(load(base), load(new), scorer_factory=toy_factory, **kw)


def test_identical_records_pass(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    b = make_record(tmp_path / "b", "m", BASE)
    comparison = _cmp(a, b)
    acc = next(d for d in comparison.deltas if d.metric_id == "acc[conv=a]")
    assert acc.delta == 0.0 and acc.ci95 == (0.0, 0.0) and acc.p_bootstrap == 1.0 and acc.p_randomisation == 1.0
    assert find_regressions(comparison, Tolerances(), "any") == []
    raise_on_regressions([], comparison)


def test_degraded_predictions_are_a_regression_naming_the_metric(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    worse = BASE.copy()
    for i in range(0, 30, 2):  # 15 studies go from right to wrong
        worse[i] = 0
    b = make_record(tmp_path / "b", "m", worse)
    comparison = _cmp(a, b)
    acc = next(d for d in comparison.deltas if d.metric_id == "acc[conv=a]")
    assert acc.delta == pytest.approx(-15 / 80) and acc.drop == pytest.approx(15 / 80)
    assert acc.ci95[1] < 0 and acc.p_bootstrap < 0.05 and acc.p_randomisation < 0.05
    for fail_on in ("any", "significant"):
        found = find_regressions(comparison, Tolerances(), fail_on)
        assert [r.delta.metric_id for r in found] == ["acc[conv=a]"]
    with pytest.raises(RegressionFound, match=r"acc\[conv=a\] dropped 0\.18750") as info:
        raise_on_regressions(find_regressions(comparison, Tolerances(), "any"), comparison)
    assert info.value.exit_code == 3


def test_tiny_drop_fails_any_but_not_significant(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    b = make_record(tmp_path / "b", "m", [0] + BASE[1:])
    comparison = _cmp(a, b)
    assert [r.delta.metric_id for r in find_regressions(comparison, Tolerances(), "any")] == ["acc[conv=a]"]
    assert find_regressions(comparison, Tolerances(), "significant") == []
    assert find_regressions(comparison, Tolerances(default=0.02), "any") == []


def test_lower_is_better_metric_regresses_when_it_grows(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE, lengths=[10.0] * 80)
    b = make_record(tmp_path / "b", "m", BASE, lengths=[10.0] * 40 + [14.0] * 40)
    found = find_regressions(_cmp(a, b), Tolerances(), "significant")
    assert [r.delta.metric_id for r in found] == ["len[conv=a]"]


def test_tolerance_file_exact_ids_globs_and_errors(tmp_path: Path):
    tol = tmp_path / "tol.yaml"
    tol.write_text('default: 0.5\nmetrics:\n  "acc[*": 0.01\n  "acc[conv=a]": 0.02\n  "len*": 0.1\n')
    t = load_tolerances(tol)
    assert t.for_metric("acc[conv=a]") == 0.02  # exact id wins over a glob listed earlier
    assert t.for_metric("acc[conv=b]") == 0.01  # brackets are literal, '*' is the wildcard
    assert t.for_metric("len[conv=a]") == 0.1 and t.for_metric("other") == 0.5
    flat = tmp_path / "flat.yaml"
    flat.write_text('"bleu4[tok=ptb]": 0.003\n')
    assert load_tolerances(flat).for_metric("bleu4[tok=ptb]") == 0.003
    assert load_tolerances(flat).for_metric("bleu4[tok=r2gen]") == 0.0
    for text, msg in (('"a": -1\n', "non-negative"), ('"a": "x"\n', "non-negative"), ("[1, 2]\n", "mapping"),
                      ("a: [\n", "not valid YAML"), ("metrics: {}\nextra: 1\n", "unknown top-level")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(BenchError, match=msg):
            load_tolerances(bad)
    with pytest.raises(UsageError, match="not found"):
        load_tolerances(tmp_path / "missing.yaml")


def test_refuses_other_references(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    b = make_record(tmp_path / "b", "m", BASE, references_sha256="b" * 64)
    with pytest.raises(BenchError, match="other references"):
        _cmp(a, b)


def test_refuses_other_conventions(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE, conv="a")
    b = make_record(tmp_path / "b", "m", BASE, conv="b")
    with pytest.raises(BenchError, match=r"different metric conventions.*acc\[conv=b\].*acc\[conv=a\]"):
        _cmp(a, b)
    v2 = make_record(tmp_path / "v2", "m", BASE, metric_version="2")
    with pytest.raises(BenchError, match=r"computed differently.*metric_version '1' vs '2'"):
        _cmp(a, v2)


def test_implementation_difference_is_reported_not_fatal(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE, impl={"toy": "1.0"})
    b = make_record(tmp_path / "b", "m", BASE, impl={"toy": "1.1"})
    comparison = _cmp(a, b)
    assert any("impl.toy '1.0' vs '1.1'" in n for n in comparison.notes)


def test_missing_stats(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    b = make_record(tmp_path / "b", "m", [0] * 80)
    (tmp_path / "b" / "scores" / "toy_conv=a.parquet").unlink()
    comparison = _cmp(a, b)
    assert all(d.p_bootstrap is None for d in comparison.deltas)
    assert any("no paired test" in n and "not found" in n for n in comparison.notes)
    assert find_regressions(comparison, Tolerances(), "any")  # the drop itself is still seen
    with pytest.raises(StatsUnavailable, match="--fail-on significant needs per-study statistics"):
        find_regressions(comparison, Tolerances(), "significant")
    with pytest.raises(StatsUnavailable, match="not found"):
        _cmp(a, b, require_stats=True)


def test_stats_of_another_run_are_refused(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    b = make_record(tmp_path / "b", "m", [0] * 80)
    (tmp_path / "b" / "scores" / "toy_conv=a.parquet").write_bytes(
        (tmp_path / "a" / "scores" / "toy_conv=a.parquet").read_bytes())
    with pytest.raises(BenchError, match="sha256 differs"):
        _cmp(a, b)


def test_metric_selection(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    b = make_record(tmp_path / "b", "m", BASE)
    assert [d.metric_id for d in _cmp(a, b, metrics=["len[conv=a]"]).deltas] == ["len[conv=a]"]
    with pytest.raises(UsageError, match="not in both records"):
        _cmp(a, b, metrics=["bleu4[tok=ptb]"])


def test_record_errors_name_the_file(tmp_path: Path):
    with pytest.raises(BenchError, match="no results record here"):
        load(tmp_path)
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"schema_version": "bench.results/1"}))
    with pytest.raises(BenchError, match=str(bad)):
        load(bad)


def test_shipped_examples_match_the_cli():
    """examples/ is what model repositories copy: its tolerance file loads and its flags exist."""
    import re

    import typer
    import yaml

    from rrg_bench.cli.leaderboard import register

    repo = Path(__file__).resolve().parents[2]
    tol = load_tolerances(repo / "examples" / "regression-tolerance.yaml")
    assert tol.for_metric("bleu4[tok=ptb]") == 0.005 and tol.for_metric("bleu2[tok=ptb]") == 0.01
    workflow = yaml.safe_load((repo / "examples" / "github-actions-regression.yml").read_text())
    runs = [s.get("run", "") for s in workflow["jobs"]["regression"]["steps"]]
    command = next(r for r in runs if "bench compare" in r)
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    click_compare = typer.main.get_command(app).commands["compare"]  # type: ignore[attr-defined]
    defined = {opt for param in click_compare.params for opt in param.opts}
    used = set(re.findall(r"--[a-z-]+", command))
    assert used and used <= defined, used - defined


def test_statistics_over_other_studies_are_refused(tmp_path: Path):
    a = make_record(tmp_path / "a", "m", BASE)
    b = make_record(tmp_path / "b", "m", BASE[:-1])  # one study fewer, same references hash (forged)
    with pytest.raises(BenchError, match=r"scorer 'toy\[conv=a\]'.*different studies"):
        _cmp(a, b)
