"""`bench data prepare mimic_cxr` on a fake PhysioNet tree, then verify and run on it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from helpers.mimic_fake import FakeStudy, report, write_tree
from rrg_bench.cli import app


def _studies() -> list[FakeStudy]:
    std = lambda f: report(("INDICATION", "___ with cough."), ("FINDINGS", f), ("IMPRESSION", "No acute process."))  # noqa: E731
    out = []
    for i, (split, findings) in enumerate([("train", "Heart size is normal. Lungs are clear."),
                                           ("train", "Small right pleural effusion."),
                                           ("validate", "No pneumothorax."),
                                           ("test", "Mild cardiomegaly. No edema."),
                                           ("test", "Clear lungs.")]):
        out.append(FakeStudy("10000001", f"5000000{i}", split, std(findings), [(f"d{i:04d}", "PA")]))
    return out


def test_prepare_verify_and_score_on_fake_mimic(tmp_path):
    physionet = write_tree(tmp_path / "mimic-cxr-jpg" / "2.0.0", _studies())
    data_root = tmp_path / "data"
    runner = CliRunner()
    strict = runner.invoke(app, ["data", "prepare", "mimic_cxr", "--physionet-root", str(physionet),
                                 "--data-root", str(data_root), "--no-progress"])
    assert strict.exit_code == 1 and "published" in strict.output
    result = runner.invoke(app, ["data", "prepare", "mimic_cxr", "--physionet-root", str(physionet),
                                 "--data-root", str(data_root), "--no-check-counts", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (data_root / "mimic_cxr" / "official").is_dir()
    verify = runner.invoke(app, ["data", "verify", "--dataset", "mimic_cxr/official", "--data-root", str(data_root)])
    # prepared without the published counts: references check out, but it is not the official split
    assert verify.exit_code == 1
    assert "test: 2 references match the prepared manifest" in verify.output
    assert "split counts differ from the published ones" in verify.output
    run = runner.invoke(app, ["run", "--model", "oracle", "--dataset", "mimic_cxr/official", "--split", "test",
                              "--data-root", str(data_root), "--runs-dir", str(tmp_path / "runs"), "--metrics",
                              "chexpert_rules", "--n-boot", "20", "--no-progress"])
    assert run.exit_code == 0, run.output
    record = json.loads(next((tmp_path / "runs").rglob("results.json")).read_text())
    assert record["predictions"]["n"] == 2
    assert record["metrics"]["chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]"]["value"] == 1.0
