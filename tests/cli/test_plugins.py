"""Third-party generators and metrics registered through entry points show up and run."""

from __future__ import annotations

import json

from helpers.bench_cli import bench_env, run_bench


def test_plugin_distribution_is_listed(plugin_site):
    proc = run_bench(["ls", "--verbose"], env=bench_env(plugin_site))
    assert proc.returncode == 0, proc.stderr
    assert "slow_echo" in proc.stdout and "length_ratio" in proc.stdout
    assert "plugin:rrg-bench-testplugin==0.0.1" in proc.stdout.replace("\n", "")


def test_plugin_generator_and_metric_run_end_to_end(plugin_site, tmp_path):
    proc = run_bench(["run", "--model", "slow_echo", "--model-arg", "delay=0", "--metrics", "length_ratio",
                      "--runs-dir", str(tmp_path), "--n-boot", "50", "--no-progress"], env=bench_env(plugin_site))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next(tmp_path.rglob("records/*/results.json")).read_text())
    assert record["generator"]["origin"] == "plugin:rrg-bench-testplugin==0.0.1"
    m = record["metrics"]["length_ratio"]
    assert m["ci95"][0] <= m["value"] <= m["ci95"][1]


def test_unknown_plugin_name_suggests(plugin_site):
    proc = run_bench(["run", "--model", "slow_ech", "--no-progress"], env=bench_env(plugin_site))
    assert proc.returncode == 2
    assert "Did you mean: slow_echo" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_model_arg_is_a_usage_error(plugin_site):
    proc = run_bench(["run", "--model", "slow_echo", "--model-arg", "dealy=0", "--no-progress"],
                     env=bench_env(plugin_site))
    assert proc.returncode == 2
    assert "dealy" in proc.stderr and "Traceback" not in proc.stderr


KINDS = {"generators": "slow_echo", "metrics": "length_ratio", "datasets": "toyplug/v1", "suites": "plug_suite",
         "trainers": "slow_echo", "preparers": "toyplug/v1"}


def test_a_plugin_adds_every_kind_and_each_has_a_card(plugin_site):
    env = bench_env(plugin_site)
    for kind, name in KINDS.items():
        listed = run_bench(["ls", kind], env=env)
        assert listed.returncode == 0 and name in listed.stdout and "plugin:rrg-bench-testplugin" in listed.stdout, (
            kind, listed.stdout, listed.stderr)
        card = run_bench(["ls", kind, "--card", name], env=env)
        assert card.returncode == 0 and "test plugin" in card.stdout, (kind, card.stdout, card.stderr)
    valid = run_bench(["validate"], env=env)
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_plugin_dataset_preparer_trainer_and_suite_work_end_to_end(plugin_site, tmp_path):
    from helpers import REPO

    env = bench_env(plugin_site)
    root = tmp_path / "data"
    source = REPO / "tests" / "fixtures" / "plugin_source"
    prepared = run_bench(["data", "prepare", "toyplug/v1", "--source", str(source), "--data-root", str(root)], env=env)
    assert prepared.returncode == 0 and "6 reports" in prepared.stdout, prepared.stderr
    ckpt = tmp_path / "ckpt"
    trained = run_bench(["train", "--model", "slow_echo", "--dataset", "toyplug/v1", "--data-root", str(root),
                         "--output", str(ckpt), "--no-progress"], env=env)
    assert trained.returncode == 0 and (ckpt / "vocabulary.json").is_file(), trained.stderr
    ran = run_bench(["run", "--model", "slow_echo", "--dataset", "toyplug/v1", "--data-root", str(root),
                     "--checkpoint", str(ckpt), "--model-arg", "delay=0", "--metrics", "plug_suite",
                     "--runs-dir", str(tmp_path / "runs"), "--n-boot", "20", "--no-progress"], env=env)
    assert ran.returncode == 0, ran.stderr
    record = json.loads(next((tmp_path / "runs").rglob("records/*/results.json")).read_text())
    assert record["dataset"]["name"] == "toyplug/v1" and record["predictions"]["n"] == 2
    assert "length_ratio" in record["metrics"]
    assert any(m.startswith("chexpert_rules_f1") for m in record["metrics"])
    assert record["status"]["requested"] == ["length_ratio", "chexpert_rules[uncertain=positive]"]
