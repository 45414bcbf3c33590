"""The issue's own scenario on real IU X-Ray text: a complete 590-study record survives every rerun."""

from __future__ import annotations

import json

from conftest import accepted, assert_unchanged, load, record_paths, refused, snapshot

from helpers.bench_cli import bench_env, run_bench


def test_complete_590_study_record_survives_reruns_and_table_shows_the_union(tmp_path, iu_source):
    runs = tmp_path / "runs"
    base = ["run", "--model", "random_report", "--dataset", "iu_xray/r2gen", "--split", "test", "--data-root",
            str(iu_source), "--runs-dir", str(runs), "--n-boot", "100", "--no-progress"]
    accepted(run_bench([*base, "--metrics", "nlg"], timeout=900))
    (full,) = record_paths(runs)
    assert load(full)["predictions"]["n"] == 590 and load(full)["status"]["eligible"]
    before = snapshot(runs)

    limited = accepted(run_bench([*base, "--metrics", "nlg", "--limit", "20"], timeout=900))
    assert "partial" in limited
    refused(run_bench([*base, "--metrics", ""]), "--metrics", code=2)
    no_java = run_bench([*base, "--metrics", "nlg"], env=bench_env(PATH=str(tmp_path / "no-bin"), JAVA_HOME=""))
    refused(no_java, "Java")
    accepted(run_bench([*base, "--metrics", "nlg[conv=r2gen]"], timeout=900))
    assert_unchanged(before, runs)
    assert load(full)["predictions"]["n"] == 590

    run_dir = full.parents[2]
    table = run_bench(["table", str(run_dir), "--format", "json", "--n-boot", "0"])
    columns = {c["id"] for c in json.loads(accepted(table))["columns"]}
    assert {"bleu4[tok=ptb]", "bleu4[conv=r2gen]"} <= columns
