"""``bench run`` hands ``nlg[conv=r2gen]`` the dataset and its train references (runner wiring),
and the values equal pycocoevalcap called directly on the convention's texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rrg_bench.cli import app
from rrg_bench.metrics.nlg.java import java_executable
from rrg_bench.metrics.nlg.r2gen import Vocabulary, dot_spacing, reference_text, resolve_settings

pytestmark = pytest.mark.skipif(java_executable() is None, reason="needs Java for METEOR")

LIMIT = 25


def test_bench_run_scores_the_oracle_under_the_r2gen_convention(iu_source: Path, tmp_path: Path):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    result = CliRunner().invoke(app, [
        "run", "--model", "oracle", "--dataset", "iu_xray/r2gen", "--split", "test", "--data-root", str(iu_source),
        "--runs-dir", str(tmp_path), "--metrics", "nlg[conv=r2gen]", "--limit", str(LIMIT), "--n-boot", "0",
        "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    record = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert record["metrics"]["bleu4[conv=r2gen]"]["impl"]["r2gen"]["train_reports"] == 2069

    # the oracle emits the raw reports: cased and punctuated, unlike the processed references
    assert any("predictions contain upper-case letters" in w for w in record["status"]["warnings"])

    ann = json.loads((iu_source / "annotation.json").read_text())
    raw = [e["report"] for e in ann["test"][:LIMIT]]
    vocab = Vocabulary.from_reports([e["report"] for e in ann["train"]], cleaner="iu_xray", threshold=3)
    settings = resolve_settings("iu_xray/r2gen")
    gts = {i: [dot_spacing(reference_text(r, vocab, settings))] for i, r in enumerate(raw)}
    res = {i: [dot_spacing(r)] for i, r in enumerate(raw)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    got = {k.split("[")[0]: v["value"] for k, v in record["metrics"].items()}
    assert [got[f"bleu{n}"] for n in range(1, 5)] == pytest.approx(bleu, abs=1e-12)
    assert got["rouge_l"] == pytest.approx(float(rouge), abs=1e-12)
    assert got["cider_d"] == pytest.approx(float(cider), abs=1e-12)
    assert got["bleu1"] < 0.9  # the raw report is *not* a perfect match under this convention
