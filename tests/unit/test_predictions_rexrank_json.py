"""ReXrank's prediction JSON ({study_id: {..., "report": ground truth, "model_prediction": ...}})
read by bench.predictions.read_external."""

from __future__ import annotations

import json

import pytest

from rrg_bench.errors import PredictionsError
from rrg_bench.predictions import read_external


def _write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_model_prediction_is_read_never_the_ground_truth(tmp_path):
    path = _write(tmp_path / "sub.json", {
        "CXR1_1_IM-0001": {"report": "Findings: GT. Impression: GT.", "model_prediction": "Lungs clear.", "alt": "A."},
        "CXR2_IM-0652": {"report": "Findings: GT2. Impression: GT2.", "model_prediction": None, "alt": "Other."},
    })
    preds = read_external(path)
    assert [(p.study_id, p.report, p.line) for p in preds] == [("CXR1_1_IM-0001", "Lungs clear.", 1),
                                                               ("CXR2_IM-0652", "", 2)]
    assert [p.report for p in read_external(path, text_col="alt")] == ["A.", "Other."]


def test_a_study_without_model_prediction_is_named(tmp_path):
    path = _write(tmp_path / "sub.json", {"CXR1_1_IM-0001": {"report": "GT"}})
    with pytest.raises(PredictionsError, match=r"sub.json:study CXR1_1_IM-0001: missing field 'model_prediction'"):
        read_external(path)
    with pytest.raises(PredictionsError, match=r"ReXrank's object keyed by study id"):
        read_external(_write(tmp_path / "n.json", 3))
    with pytest.raises(PredictionsError, match=r"expected an object with 'model_prediction'"):
        read_external(_write(tmp_path / "s.json", {"CXR1_1_IM-0001": "text"}))
