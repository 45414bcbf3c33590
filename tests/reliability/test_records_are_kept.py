"""Class 1: no later command replaces a better record of the same run without a word."""

from __future__ import annotations

import json
import shutil

from conftest import FAST, accepted, assert_unchanged, load, record_paths, refused, snapshot

from helpers.bench_cli import bench_env, run_bench


def test_a_limit_rerun_adds_a_partial_record_and_keeps_the_full_one(complete_run):
    before = snapshot(complete_run)
    out = accepted(run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), *FAST,
                              "--limit", "3"]))
    assert_unchanged(before, complete_run)
    records = [load(p) for p in record_paths(complete_run)]
    assert sorted(r["predictions"]["n"] for r in records) == [3, 12]
    assert "partial" in out and "--limit 3" in out


def test_rescoring_with_other_metrics_adds_a_record_and_table_shows_the_union(complete_run, tmp_path):
    before = snapshot(complete_run)
    accepted(run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), "--metrics", "nlg",
                        "--n-boot", "20", "--no-progress"]))
    assert_unchanged(before, complete_run)
    run_dir = record_paths(complete_run)[0].parents[2]
    table = run_bench(["table", str(run_dir), "--format", "json", "--n-boot", "0"])
    columns = {c["id"] for c in json.loads(accepted(table))["columns"]}
    assert "bleu4[tok=ptb]" in columns and "chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]" in columns
    assert "union of 2 complete records" in table.stderr


def test_metrics_naming_no_scorer_is_a_usage_error(complete_run):
    before = snapshot(complete_run)
    for value in ("", ",", " , "):
        proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), "--metrics", value,
                          "--no-progress"])
        refused(proc, "--metrics", "names no scorer", code=2)
    assert_unchanged(before, complete_run)


def test_no_java_makes_nlg_unavailable_and_never_replaces_a_record(complete_run, tmp_path):
    before = snapshot(complete_run)
    env = bench_env(PATH=str(tmp_path / "empty-bin"), JAVA_HOME="")
    only_nlg = run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), "--metrics", "nlg",
                          "--no-progress"], env=env)
    refused(only_nlg, "no requested metric could be computed", "Java")
    mixed = run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), "--metrics",
                       "nlg,chexpert_rules", "--n-boot", "20", "--no-progress"], env=env)
    out = accepted(mixed)
    assert "complete, 1 of 2 metrics unavailable, not eligible" in " ".join(out.split())
    assert_unchanged(before, complete_run)


def test_missing_weights_are_unavailable_not_an_empty_record(complete_run):
    before = snapshot(complete_run)
    proc = run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), "--metrics",
                      "chexbert[ckpt=/nonexistent/chexbert.pth]", "--no-progress"])
    refused(proc, "no requested metric could be computed", "chexbert")
    assert_unchanged(before, complete_run)


def test_commands_that_read_a_run_say_which_record(complete_run, tmp_path):
    accepted(run_bench(["run", "--model", "random_report", "--runs-dir", str(complete_run), *FAST, "--limit", "3"]))
    run_dir = record_paths(complete_run)[0].parents[2]
    full = next(p for p in record_paths(complete_run) if load(p)["predictions"]["limit"] is None)
    proc = run_bench(["compare", str(run_dir), str(run_dir), "--n-boot", "0", "--n-trials", "0"])
    accepted(proc)
    assert f"read {full} (fullest complete of 2 records)" in " ".join(proc.stderr.split())
    root = tmp_path / "lb"
    shutil.copytree(__import__("helpers").REPO / "leaderboard", root,
                    ignore=shutil.ignore_patterns("records", "tables"))
    (root / "boards").joinpath("demo_test.yaml").write_text(
        "board: demo_test\nversion: 1\ntitle: demo\ndataset: {name: demo, split: test}\n"
        "columns: ['chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]']\n"
        "sort: {metric: 'chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]'}\n")
    add = run_bench(["leaderboard", "add", str(run_dir), "--root", str(root)])
    accepted(add)
    assert f"read {full}" in " ".join(add.stderr.split())
