"""Clinical metrics through the command line: offline runs degrade gracefully, and a second
scoring of the same run annotates nothing (shown by `bench cache stats`)."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _chexbert_doubles import build_checkpoint, load_iu_reports, minilm_vocab, small_bert_config, write_config  # noqa: E402

from helpers import only_record  # noqa: E402
from helpers.bench_cli import bench_env, run_bench  # noqa: E402

TINY = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2}


def _isolated_env(tmp_path) -> dict[str, str]:
    """No weights or caches of this machine may leak in."""
    return bench_env(BENCH_WEIGHTS_DIR=str(tmp_path / "weights"), BENCH_CACHE_DIR=str(tmp_path / "cache"),
                     XDG_CACHE_HOME=str(tmp_path / "xdg"), HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")


def test_default_suite_without_weights_completes_and_marks_model_metrics_unavailable(iu_source, tmp_path):
    proc = run_bench(["run", "--model", "constant_normal", "--dataset", "iu_xray/r2gen", "--split", "test",
                      "--data-root", str(iu_source), "--runs-dir", str(tmp_path / "runs"), "--n-boot", "50",
                      "--no-progress"], env=_isolated_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next((tmp_path / "runs").rglob("results.json")).read_text())
    assert record["status"]["state"] == "complete" and not record["status"]["eligible"]
    assert "2 of 4 requested metrics unavailable" in record["status"]["reasons"][0]
    assert "complete, 2 of 4 metrics unavailable, not eligible" in " ".join(proc.stdout.split())
    assert set(record["unavailable"]) == {"chexbert[uncertain=positive]", "radgraph[model=radgraph-xl]"}
    assert "bench weights fetch chexbert" in record["unavailable"]["chexbert[uncertain=positive]"]
    assert "bench weights fetch radgraph-xl" in record["unavailable"]["radgraph[model=radgraph-xl]"]
    assert "bleu4[tok=ptb]" in record["metrics"]
    assert "chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]" in record["metrics"]
    assert not any(m.startswith(("chexbert_f1", "radgraph_f1")) for m in record["metrics"])
    assert "unavailable chexbert" in proc.stdout.replace("\n", " ")


def test_second_scoring_annotates_nothing(iu_source, tmp_path):
    cfg = dict(small_bert_config(2), **TINY)
    cfg_path = write_config(tmp_path / "cfg", cfg)
    ckpt = build_checkpoint(tmp_path / "chexbert.pth", cfg, load_iu_reports("train")[:32], minilm_vocab(), seed=1)
    spec = f"chexbert[ckpt={ckpt},tokenizer={minilm_vocab()},config={cfg_path}]"
    env = _isolated_env(tmp_path)
    args = ["run", "--model", "random_report", "--dataset", "iu_xray/r2gen", "--split", "test", "--data-root",
            str(iu_source), "--runs-dir", str(tmp_path / "runs"), "--metrics", spec, "--limit", "60",
            "--n-boot", "20", "--no-progress"]
    first = run_bench(args, env=env)
    assert first.returncode == 0, first.stderr
    rec1 = json.loads(only_record(tmp_path / "runs").read_text())
    assert rec1["cache"]["chexbert[uncertain=positive]"]["hits"] == 0
    unique = rec1["cache"]["chexbert[uncertain=positive]"]["misses"]
    assert unique > 60  # references and hypotheses, de-duplicated

    again = run_bench(args, env=env)  # the same computation: its record is already there, nothing replaced
    assert again.returncode == 0 and "already recorded" in again.stdout, again.stderr
    second = run_bench([*args[:-2], "21", "--no-progress"], env=env)  # other CIs: a new record, same labels
    assert second.returncode == 0, second.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("records/*/results.json")]
    rec2 = next(r for r in records if r["run"]["n_boot"] == 21)
    assert rec2["cache"]["chexbert[uncertain=positive]"] == {"hits": unique, "misses": 0}
    assert {k: v["value"] for k, v in rec2["metrics"].items()} == {k: v["value"] for k, v in rec1["metrics"].items()}

    stats = run_bench(["cache", "stats"], env=env)
    assert stats.returncode == 0, stats.stderr
    row = next(line for line in stats.stdout.splitlines() if "chexbert" in line)
    numbers = [int(n) for n in re.findall(r"│\s*(\d+)\s*(?=│)", row)]
    entries, lookups, hits, misses, last_hits, last_misses = numbers
    assert (entries, last_hits, last_misses) == (unique, unique, 0)
