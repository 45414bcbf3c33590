"""radcliq_v1: the published RadCliQ-v1 scaler and linear model, and its composition.

* The constants reproduce the RadCliQ-v1 column CXR-Report-Metric wrote for MoERad on IU X-Ray
  (590 studies) from that file's own four component columns, within 1e-7.
* End to end on tiny random models: BERTScore (tiny RoBERTa), SembScore (tiny CheXbert),
  BLEU-2, and a stand-in for RadGraph (whose model cannot be built offline).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from helpers import shared_dir
from rrg_bench.api.scorer import ScoringContext
from rrg_bench.metrics.radcliq_v1.scorer import COEFS, FEATURES, SCALER_MEAN, SCALER_SCALE, RadCliQScorer, radcliq_v1

MOERAD = shared_dir() / "data" / "external_predictions" / "MoERad"


@pytest.fixture(scope="module")
def report_scores() -> list[dict[str, str]]:
    path = MOERAD / "report_scores.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found (set BENCH_SHARED)")
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_moerad_radcliq_v1_from_its_component_columns(report_scores):
    """bertscore was written from a float32 tensor (shortest float32 repr), the rest as float64;
    reading bertscore back as float32 restores the exact value the pickle's model saw."""
    col = {name: np.array([float(r[name]) for r in report_scores]) for name in FEATURES}
    bert32 = np.array([np.float32(r["bertscore"]) for r in report_scores], dtype=np.float64)
    expected = np.array([float(r["RadCliQ-v1"]) for r in report_scores])
    got = radcliq_v1(col["radgraph_combined"], bert32, col["semb_score"], col["bleu_score"])
    assert np.max(np.abs(got - expected)) <= 1e-7
    # reading every column as float64 is also within 1e-7
    got64 = radcliq_v1(*(col[name] for name in FEATURES))
    assert np.max(np.abs(got64 - expected)) <= 1e-7
    assert len(expected) == 590


def test_constants_shape_and_sanity():
    assert FEATURES == ("radgraph_combined", "bertscore", "semb_score", "bleu_score")
    assert SCALER_MEAN.shape == SCALER_SCALE.shape == (4,) and COEFS.shape == (5,)
    # a perfect report (every component 1) and an empty one (every component 0)
    perfect, nothing = radcliq_v1([1.0], [1.0], [1.0], [1.0])[0], radcliq_v1([0.0], [0.0], [0.0], [0.0])[0]
    assert perfect == pytest.approx(-1.4407, abs=1e-4) and nothing == pytest.approx(2.4501, abs=1e-4)
    assert radcliq_v1([0.5], [0.5], [0.5], [0.0])[0] == pytest.approx(radcliq_v1([0.5], [0.5], [0.5], [1.0])[0],
                                                                       abs=1e-10)  # BLEU weight ~4e-12


def test_aggregate_mean_and_inverse():
    import pandas as pd

    scorer = RadCliQScorer(components={})
    stats = pd.DataFrame({"radcliq_v1": [0.5, 1.5, 1.0]}, index=["a", "b", "c"])
    assert scorer.aggregate(stats) == {"radcliq_v1[idf=false]": 1.0, "inv_radcliq_v1[idf=false]": 1.0}
    columns = {c.id: c for c in RadCliQScorer(idf=True, components={}).columns()}
    assert not columns["radcliq_v1[idf=true]"].higher_is_better
    assert columns["inv_radcliq_v1[idf=true]"].higher_is_better


@pytest.fixture(scope="module")
def tiny_components(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("bert_score")
    from _rexrank_doubles import (
        FakeRadGraphScorer,
        build_tiny_chexbert,
        build_tiny_roberta,
        chexbert_paths,
        session_dir,
    )

    from rrg_bench.metrics.bertscore.scorer import BertScoreScorer
    from rrg_bench.metrics.bleu2_rexrank.scorer import Bleu2RexrankScorer
    from rrg_bench.metrics.sembscore.scorer import SembScoreScorer

    roberta = session_dir(tmp_path_factory, "tiny-roberta", build_tiny_roberta)
    chexbert = chexbert_paths(session_dir(tmp_path_factory, "tiny-chexbert", build_tiny_chexbert))
    return {
        "radgraph_combined": FakeRadGraphScorer(model="radgraph"),
        "bertscore": BertScoreScorer(model_dir=str(roberta)),
        "semb_score": SembScoreScorer(ckpt=str(chexbert["ckpt"]), tokenizer=str(chexbert["tokenizer"]),
                                      config=str(chexbert["config"])),
        "bleu_score": Bleu2RexrankScorer(),
    }


def test_end_to_end_on_tiny_models(tiny_components):
    from _rexrank_doubles import iu_pairs

    hyps, refs = iu_pairs(30)
    ids = [f"s{i}" for i in range(30)]
    ctx = ScoringContext(batch_size=8)
    result = RadCliQScorer(components=tiny_components).score(ids, hyps, refs, ctx)
    stats = result.stats
    assert list(stats.columns) == [*FEATURES, "radcliq_v1"]
    # each feature equals its own scorer's per-study statistic
    own = {"radgraph_combined": "er_mean", "bertscore": "f1", "semb_score": "semb", "bleu_score": "bleu2"}
    for feature, column in own.items():
        alone = tiny_components[feature].score(ids, hyps, refs, ctx).stats[column]
        assert np.array_equal(stats[feature].to_numpy(), alone.to_numpy()), feature
    assert np.array_equal(stats["radcliq_v1"].to_numpy(), radcliq_v1(*(stats[f] for f in FEATURES)))
    assert stats["radcliq_v1"].iloc[0] == pytest.approx(-1.4407, abs=1e-3)  # the exact copy
    mean = float(stats["radcliq_v1"].mean())
    assert result.values == {"radcliq_v1[idf=false]": mean, "inv_radcliq_v1[idf=false]": 1 / mean}


def test_missing_components_are_all_named(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("BENCH_CHEXBERT_CKPT", "BENCH_RADGRAPH_MODEL_DIR", "BENCH_BERTSCORE_MODEL_DIR"):
        monkeypatch.delenv(var, raising=False)
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    reason = RadCliQScorer().unavailable_reason()
    assert reason is not None and reason.startswith("RadCliQ-v1 needs all four components")
    for feature in ("[radgraph_combined] radgraph weights not found", "[bertscore] bertscore: distilroberta-base",
                    "[semb_score] chexbert weights not found"):
        assert feature in reason
    assert "[bleu_score]" not in reason
