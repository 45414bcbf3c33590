"""``bench score … --metrics nlg[conv=r2gen]`` reproduces the numbers CvT2DistilGPT2's authors
published for their IU X-Ray test predictions.

Source of the published values: github.com/aehrc/cvt2distilgpt2, README.md at commit
8cf4c8dcafe92ebf50d5a1d4ebbc7c3f0b7e2d87 (2023-05-16, the commit that also added the
predictions file), "Results" section, IU X-Ray table (checkpoint
``iu_x_ray_chen/cvt_21_to_distilgpt2/epoch=10-val_chen_cider=0.475024.ckpt``), lines 140–147:
``test_chen_bleu_1`` … ``test_chen_rouge``. The predictions file is that repository's
``experiment/iu_x_ray_chen/test_iu_x_ray_chen_cvt2distilgpt2/trial_0/generated_reports/
test_reports_epoch-0_16-05-2023_12-46-42.csv`` (provenance: shared/data/external_predictions/SOURCE.md).

Why float32 for BLEU and METEOR: the authors logged Python floats through PyTorch Lightning's
``log_dict``, which stores them as float32 tensors; ROUGE-L and CIDEr are NumPy float64
means and were logged at full precision — so those two must match exactly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import only_record, shared_dir
from rrg_bench.cli import app
from rrg_bench.metrics.nlg.java import java_executable

pytestmark = pytest.mark.skipif(java_executable() is None, reason="needs Java for METEOR")

PREDICTIONS = (shared_dir() / "data" / "external_predictions" / "cvt2distilgpt2"
               / "test_reports_epoch-0_16-05-2023_12-46-42.csv")
PREDICTIONS_SHA256 = "a39c41e058f747ad5fabb9b5466f6e04d0f930c8fb3a1b3dc09a3180db56f85d"

#: README.md @ 8cf4c8dc, lines 140-147 (as printed there; BLEU/METEOR are float32 values)
PUBLISHED_FLOAT32 = {
    "bleu1[conv=r2gen]": "0.4734129309654236",   # test_chen_bleu_1, line 140
    "bleu2[conv=r2gen]": "0.30362269282341003",  # test_chen_bleu_2, line 141
    "bleu3[conv=r2gen]": "0.22399061918258667",  # test_chen_bleu_3, line 142
    "bleu4[conv=r2gen]": "0.17524345219135284",  # test_chen_bleu_4, line 143
    "meteor[conv=r2gen]": "0.19990624487400055",  # test_chen_meteor, line 145
}
PUBLISHED_FLOAT64 = {
    "cider_d[conv=r2gen]": "0.6941080384291234",  # test_chen_cider, line 144
    "rouge_l[conv=r2gen]": "0.3761140813853112",  # test_chen_rouge, line 147
}


@pytest.fixture(scope="module")
def record(iu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not PREDICTIONS.is_file():
        pytest.skip(f"CvT2DistilGPT2 predictions not found at {PREDICTIONS} (set BENCH_SHARED)")
    assert hashlib.sha256(PREDICTIONS.read_bytes()).hexdigest() == PREDICTIONS_SHA256
    out = tmp_path_factory.mktemp("cvt2distilgpt2")
    result = CliRunner().invoke(app, [
        "score", "--predictions", str(PREDICTIONS), "--id-col", "dicom_id", "--dataset", "iu_xray/r2gen",
        "--split", "test", "--data-root", str(iu_root), "--metrics", "nlg[conv=r2gen]",
        "--output", str(out), "--n-boot", "50", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    return json.loads(only_record(out).read_text())


def test_bleu_and_meteor_equal_the_published_float32_values(record):
    for metric_id, published in PUBLISHED_FLOAT32.items():
        ours = record["metrics"][metric_id]["value"]
        assert float(np.float32(ours)) == float(published), (metric_id, ours, published)


def test_rouge_l_and_cider_equal_the_published_values_exactly(record):
    for metric_id, published in PUBLISHED_FLOAT64.items():
        assert record["metrics"][metric_id]["value"] == float(published), metric_id


def test_record_is_complete_and_says_how_the_references_were_made(record):
    assert record["status"]["state"] == "complete" and record["status"]["eligible"]
    assert record["status"]["warnings"] == []  # the predictions are R2Gen-style text already
    assert record["predictions"]["n"] == 590
    assert set(record["metrics"]) == set(PUBLISHED_FLOAT32) | set(PUBLISHED_FLOAT64)
    for value in record["metrics"].values():
        assert value["scorer"] == "nlg[conv=r2gen]"
        assert value["ci95"][0] <= value["value"] <= value["ci95"][1]
    facts = record["metrics"]["bleu4[conv=r2gen]"]["impl"]
    assert facts["normaliser"] == "r2gen_conv:1"
    assert facts["r2gen"] == {**facts["r2gen"], "dataset": "iu_xray/r2gen", "cleaner": "iu_xray",
                              "threshold": 3, "max_seq_length": 60, "vocab_from": "train",
                              "train_reports": 2069}
