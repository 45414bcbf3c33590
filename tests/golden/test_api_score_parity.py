"""The public API's NLG numbers are pycocoevalcap's: ``rrg_bench.score`` on the 590 IU X-Ray test
references against 590 random train reports equals direct pycocoevalcap 1.2 calls on the same texts,
corpus values and every study's per-sentence values."""

from __future__ import annotations

import json
import random

from helpers.pycocoevalcap_direct import direct_pycocoevalcap


def test_score_equals_direct_pycocoevalcap_on_590_iu_pairs(iu_root):
    import rrg_bench

    split = json.loads((iu_root / "annotation.json").read_text(encoding="utf-8"))
    rng = random.Random(11)
    ids = [s["id"] for s in split["test"]]
    refs = [s["report"] for s in split["test"]]
    hyps = [rng.choice(split["train"])["report"] for _ in ids]
    assert len(ids) == len(set(ids)) == 590

    scores = rrg_bench.score(hyps, refs, metrics="nlg", ids=ids, n_boot=0)

    per_sentence: dict[str, list[float]] = {}
    expected = direct_pycocoevalcap(dict(zip(ids, refs)), dict(zip(ids, hyps)), per_sentence)
    assert sorted(scores.to_dict()) == sorted(expected)
    for metric_id, value in expected.items():
        assert abs(scores[metric_id].value - value) <= 1e-12, (metric_id, scores[metric_id].value, value)
    assert 0.05 < expected["bleu1[tok=ptb]"] < 0.6  # random pairs: a real, non-degenerate comparison
    samples = scores.samples
    assert list(samples.index) == ids
    for metric_id, values in per_sentence.items():
        worst = max(abs(a - b) for a, b in zip(samples[metric_id].tolist(), values))
        assert worst <= 1e-12, (metric_id, worst)
