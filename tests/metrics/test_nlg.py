"""NLGScorer against direct pycocoevalcap 1.2 calls on real IU X-Ray text (R2Gen test split).

References are the 590 test reports; hypotheses are 590 training reports paired off by
position, with edge cases planted (empty and blank predictions, perfect matches — METEOR's
one-chunk rule —, an empty reference, a newline and a ``|||`` inside predictions).
The data are read from the shared folder (conftest ``iu_source``), never copied into the repository.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rrg_bench.api.scorer import ScoringContext
from rrg_bench.errors import UsageError
from rrg_bench.metrics.nlg import NLGScorer
from rrg_bench.metrics.nlg.java import METEOR_JAR, java_executable
from rrg_bench.metrics.nlg.maths import METEOR_COLS
from rrg_bench.metrics.nlg.meteor import meteor_from_stats
from rrg_bench.metrics.nlg.normalisers import PTBNormaliser, R2GenCleanNormaliser

pytestmark = pytest.mark.skipif(java_executable() is None, reason="needs Java for METEOR / PTB")

TOL = 1e-12
EMPTY_HYPS = (3, 10)
PERFECT = (20, 21, 22)
EMPTY_REF = 30


@pytest.fixture(scope="module")
def iu_texts(iu_source: Path) -> tuple[list[str], list[str], list[str]]:
    ann = json.loads((iu_source / "annotation.json").read_text())
    test, train = ann["test"], ann["train"]
    ids = [e["id"] for e in test]
    refs = [e["report"] for e in test]
    hyps = [e["report"] for e in train[: len(test)]]
    hyps[EMPTY_HYPS[0]] = ""
    hyps[EMPTY_HYPS[1]] = "   "
    for i in PERFECT:
        hyps[i] = refs[i]
    refs[EMPTY_REF] = ""
    hyps[40] = hyps[40].replace(". ", ".\n", 1)
    hyps[50] = hyps[50] + " ||| end"
    return ids, hyps, refs


@pytest.fixture(scope="module")
def pycoco_meteor():
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    yield meteor
    meteor.meteor_p.kill()
    meteor.meteor_p.wait()


@pytest.fixture(scope="module")
def r2gen_scorer():
    """One scorer for every r2gen score() call of this module (the process's pooled METEOR JVM serves them all)."""
    return NLGScorer(tok="r2gen")


@pytest.fixture(scope="module", params=["ptb", "r2gen"])
def scored(request, iu_texts, r2gen_scorer):
    ids, hyps, refs = iu_texts
    scorer = r2gen_scorer if request.param == "r2gen" else NLGScorer(tok="ptb")
    result = scorer.score(ids, hyps, refs, ScoringContext())
    return scorer, result


@pytest.fixture(scope="module")
def upstream_ptb(iu_texts):
    """pycocoevalcap's own PTBTokenizer, called as COCOEvalCap does (references, then predictions)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    _, hyps, refs = iu_texts
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r}] for i, r in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
    return gts, res


@pytest.fixture(scope="module")
def tokenised(scored, iu_texts, upstream_ptb):
    """The texts pycocoevalcap sees, produced by upstream code where upstream has it."""
    scorer, _ = scored
    if scorer.params.tok == "ptb":
        return upstream_ptb
    _, hyps, refs = iu_texts
    clean = R2GenCleanNormaliser().clean
    return {i: [clean(r)] for i, r in enumerate(refs)}, {i: [clean(h)] for i, h in enumerate(hyps)}


def direct(gts, res, meteor) -> dict[str, object]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    met, met_items = meteor.compute_score(gts, res)
    rouge, rouge_items = Rouge().compute_score(gts, res)
    cider, cider_items = Cider().compute_score(gts, res)
    return {"bleu": bleu, "meteor": met, "meteor_items": met_items, "rouge_l": rouge,
            "rouge_items": rouge_items, "cider_d": cider, "cider_items": cider_items}


@pytest.fixture(scope="module")
def reference(tokenised, pycoco_meteor):
    gts, res = tokenised
    return direct(gts, res, pycoco_meteor)


def by_family(scorer, values) -> dict[str, float]:
    return {cid.split("[")[0]: v for cid, v in values.items()}


def test_ptb_tokenisation_equals_pycocoevalcap_ptbtokenizer(upstream_ptb, iu_texts):
    gts, res = upstream_ptb
    _, hyps, refs = iu_texts
    ours = PTBNormaliser().normalise([*hyps, *refs], timeout_s=120)
    assert ours == [res[i][0] for i in range(len(hyps))] + [gts[i][0] for i in range(len(refs))]


def test_values_equal_direct_pycocoevalcap(scored, reference):
    scorer, result = scored
    got = by_family(scorer, result.values)
    for n in range(4):
        assert abs(got[f"bleu{n + 1}"] - reference["bleu"][n]) <= TOL
    for key in ("meteor", "rouge_l", "cider_d"):
        assert abs(got[key] - float(reference[key])) <= TOL, key
    assert set(result.values) == {c.id for c in scorer.columns()}


def test_per_study_statistics_equal_pycocoevalcap_items(scored, reference, iu_texts):
    _, result = scored
    ids = iu_texts[0]
    assert list(result.stats.index) == ids and result.stats.index.name == "study_id"
    np.testing.assert_allclose(result.stats["rouge_l"], reference["rouge_items"], rtol=0, atol=TOL)
    np.testing.assert_allclose(result.stats["cider_d"], reference["cider_items"], rtol=0, atol=TOL)
    np.testing.assert_allclose(result.stats["meteor"], reference["meteor_items"], rtol=0, atol=TOL)


def test_aggregate_of_full_set_equals_values(scored):
    scorer, result = scored
    again = scorer.aggregate(result.stats)
    assert again.keys() == result.values.keys()
    for key, value in result.values.items():
        assert abs(again[key] - value) <= TOL, key
    assert result.ci_method == "bootstrap"


def test_meteor_formula_reproduces_the_jar_per_study(scored):
    _, result = scored
    ours = meteor_from_stats(result.stats.loc[:, list(METEOR_COLS)].to_numpy())
    np.testing.assert_allclose(ours, result.stats["meteor"], rtol=0, atol=TOL)


def test_aggregate_of_a_resample_equals_pycocoevalcap_on_the_resampled_corpus(
        scored, tokenised, pycoco_meteor):
    """A bootstrap resample (duplicated rows) aggregated from statistics equals upstream run
    on the resampled texts — for every metric except CIDEr-D, whose idf by design stays
    that of the full set (checked separately)."""
    scorer, result = scored
    gts, res = tokenised
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(gts), size=200)
    idx[:3] = PERFECT  # keep METEOR's perfect-match chunk rule inside the resample
    sub_gts = {j: gts[int(i)] for j, i in enumerate(idx)}
    sub_res = {j: res[int(i)] for j, i in enumerate(idx)}
    want = direct(sub_gts, sub_res, pycoco_meteor)
    got = by_family(scorer, scorer.aggregate(result.stats.iloc[idx]))
    for n in range(4):
        assert abs(got[f"bleu{n + 1}"] - want["bleu"][n]) <= TOL
    assert abs(got["meteor"] - want["meteor"]) <= TOL
    assert abs(got["rouge_l"] - want["rouge_l"]) <= TOL
    assert abs(got["cider_d"] - float(np.mean(result.stats["cider_d"].to_numpy()[idx]))) <= TOL


def test_empty_predictions_and_references_score_zero(scored):
    _, result = scored
    stats = result.stats
    for i in EMPTY_HYPS:
        row = stats.iloc[i]
        assert row["bleu_testlen"] == 0 and row["bleu_reflen"] > 0
        assert all(row[f"bleu_correct_{k}"] == 0 for k in range(1, 5))
        assert row["meteor"] == 0 and row["rouge_l"] == 0 and row["cider_d"] == 0
    row = stats.iloc[EMPTY_REF]
    assert row["bleu_reflen"] == 0 and row["bleu_testlen"] > 0
    assert row["meteor"] == 0 and row["rouge_l"] == 0 and row["cider_d"] == 0
    for i in PERFECT:
        assert stats.iloc[i]["rouge_l"] == 1.0 and stats.iloc[i]["meteor"] > 0.9


def test_all_predictions_empty_scores_zero_like_pycocoevalcap(pycoco_meteor, r2gen_scorer):
    scorer = r2gen_scorer
    refs = ["Heart size is normal. No effusion.", "No pneumothorax.", "Lungs are clear."]
    result = scorer.score(["a", "b", "c"], ["", " ", ""], refs, ScoringContext())
    clean = R2GenCleanNormaliser().clean
    want = direct({i: [clean(r)] for i, r in enumerate(refs)}, {i: [""] for i in range(3)}, pycoco_meteor)
    got = by_family(scorer, result.values)
    assert [got[f"bleu{n}"] for n in range(1, 5)] == pytest.approx(want["bleu"], abs=TOL)
    assert got["meteor"] == want["meteor"] == 0.0
    assert got["rouge_l"] == want["rouge_l"] == 0.0
    assert got["cider_d"] == want["cider_d"] == 0.0
    assert max(got[f"bleu{n}"] for n in range(1, 5)) < 1e-9


def test_all_references_empty(r2gen_scorer):
    """pycocoevalcap's Cider asserts on an empty document-frequency table; we score 0 and say so.
    ROUGE-L of an empty prediction against an empty reference is 1.0 upstream (kept)."""
    result = r2gen_scorer.score(["a", "b"], ["", "Heart normal."], ["", "  "], ScoringContext())
    assert list(result.stats["rouge_l"]) == [1.0, 0.0]
    assert list(result.stats["cider_d"]) == [0.0, 0.0]
    assert list(result.stats["meteor"]) == [0.0, 0.0]
    assert any("every reference is empty" in note for note in result.notes)
    assert r2gen_scorer.aggregate(result.stats) == pytest.approx(result.values, abs=TOL)


def test_later_calls_reuse_one_jvm(r2gen_scorer, monkeypatch):
    """The process's pool keeps the METEOR JVM alive between calls: a later call starts none."""
    from helpers.meteor_starts import count_meteor_starts

    r2gen_scorer.score(["a"], ["No effusion."], ["No pleural effusion."], ScoringContext())
    started = count_meteor_starts(monkeypatch)
    r2gen_scorer.score(["a"], ["No effusion."], ["No pleural effusion."], ScoringContext())
    assert started == []


def test_r2gen_cleaning_is_idempotent_on_real_reports(iu_texts):
    clean = R2GenCleanNormaliser().clean
    for text in iu_texts[2][:200]:
        once = clean(text)
        assert clean(once) == once
        assert once == "" or once.endswith(" .")


def test_columns_carry_the_convention():
    scorer = NLGScorer()
    assert scorer.spec == "nlg[tok=ptb]"
    cols = scorer.columns()
    assert [c.id for c in cols] == ["bleu1[tok=ptb]", "bleu2[tok=ptb]", "bleu3[tok=ptb]", "bleu4[tok=ptb]",
                                   "meteor[tok=ptb]", "rouge_l[tok=ptb]", "cider_d[tok=ptb]"]
    assert [c.display for c in cols] == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"]
    assert all(c.convention and "\n" not in c.convention and "PTB" in c.convention for c in cols)
    r2 = NLGScorer(tok="r2gen").columns()
    assert r2[6].id == "cider_d[tok=r2gen]" and "R2Gen" in r2[6].convention


def test_parameters_are_validated():
    with pytest.raises(UsageError, match="tok"):
        NLGScorer(tok="whitespace")
    with pytest.raises(UsageError, match="smoothing"):
        NLGScorer(tok="ptb", smoothing="yes")


def test_registry_resolves_nlg():
    from rrg_bench.registry import registry

    assert registry("metrics").get("nlg") is NLGScorer


def test_impl_records_versions_and_jar_hash():
    facts = NLGScorer().impl()
    assert facts["pycocoevalcap"] == "1.2"
    assert facts["meteor_jar_sha256"] == hashlib.sha256(METEOR_JAR.read_bytes()).hexdigest()
    assert facts["java"] and facts["java"][0].isdigit()
    assert facts["normaliser"].startswith("ptb") and len(facts["ptb_jar_sha256"]) == 64
    assert "ptb_jar_sha256" not in NLGScorer(tok="r2gen").impl()


def test_bad_inputs():
    scorer = NLGScorer(tok="r2gen")
    with pytest.raises(UsageError, match="no studies"):
        scorer.score([], [], [], ScoringContext())
    with pytest.raises(ValueError, match="unique"):
        scorer.score(["a", "a"], ["x", "y"], ["x", "y"], ScoringContext())
    with pytest.raises(ValueError):
        scorer.score(["a"], ["x", "y"], ["x"], ScoringContext())
