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
    record = json.loads(next(tmp_path.rglob("results.json")).read_text())
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
