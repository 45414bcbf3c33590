"""The offline CheXpert-style labeler (``metrics.chexpert_rules``) and its scorer.

Labeler rules are checked on hand-written sentences; the scorer's F1 is checked against
scikit-learn on labels of real IU X-Ray reports read from the shared folder (never copied).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from rrg_bench.api.scorer import ScoringContext
from rrg_bench.errors import UsageError
from rrg_bench.metrics.chexpert_rules import labeler as rules
from rrg_bench.metrics.chexpert_rules.agreement import load_corpus, shared_dir
from rrg_bench.metrics.chexpert_rules.labeler import label_reports
from rrg_bench.metrics.chexpert_rules.scorer import CheXpertRulesScorer
from rrg_bench.metrics.common.labels import BLANK, CHEXPERT_5_INDICES, CHEXPERT_LABELS, NEGATIVE, POSITIVE, UNCERTAIN

NO_FINDING = "No Finding"


def codes(text: str) -> dict[str, int]:
    """Non-blank codes of one report, by label name."""
    row = label_reports([text])[0]
    return {CHEXPERT_LABELS[j]: int(c) for j, c in enumerate(row) if c != BLANK}


def code(text: str, label: str) -> int:
    return int(label_reports([text])[0][CHEXPERT_LABELS.index(label)])


# ---- output contract --------------------------------------------------------------------------

def test_output_shape_dtype_order_and_codes():
    texts = ["No pleural effusion.", "Mild cardiomegaly.", "", "Mild cardiomegaly."]
    out = label_reports(texts)
    assert out.shape == (4, 14) and out.dtype == np.int8
    assert set(np.unique(out)) <= {BLANK, POSITIVE, NEGATIVE, UNCERTAIN}
    assert out[1, CHEXPERT_LABELS.index("Cardiomegaly")] == POSITIVE
    assert np.array_equal(out[1], out[3])  # duplicates get identical rows
    assert label_reports([]).shape == (0, 14)


def test_non_string_input_is_rejected_naming_the_row():
    with pytest.raises(TypeError, match="report 1"):
        label_reports(["ok", None])  # type: ignore[list-item]


def test_deterministic_across_calls_and_cache_state():
    texts = ["Possible right lower lobe pneumonia. No effusion.", "Stable cardiomegaly."]
    first = label_reports(texts)
    rules.label_sentence.cache_clear()
    assert np.array_equal(first, label_reports(texts))


# ---- mention classification ----------------------------------------------------------------------

@pytest.mark.parametrize("text,label,expected", [
    ("There is a large right pleural effusion.", "Pleural Effusion", POSITIVE),
    ("No pleural effusion.", "Pleural Effusion", NEGATIVE),
    ("Negative for pneumothorax.", "Pneumothorax", NEGATIVE),
    ("The lungs are clear without focal consolidation.", "Consolidation", NEGATIVE),
    ("Pneumothorax is not seen.", "Pneumothorax", NEGATIVE),
    ("The previously seen right pneumothorax has resolved.", "Pneumothorax", NEGATIVE),
    ("Opacity may represent atelectasis.", "Atelectasis", UNCERTAIN),
    ("May represent atelectasis.", "Atelectasis", UNCERTAIN),
    ("Cannot exclude pneumonia.", "Pneumonia", UNCERTAIN),
    ("Pneumonia cannot be excluded.", "Pneumonia", UNCERTAIN),
    ("Pneumonia is not excluded.", "Pneumonia", UNCERTAIN),
    ("Findings suspicious for pneumonia.", "Pneumonia", UNCERTAIN),
    ("Right lower lobe infiltrate versus atelectasis.", "Atelectasis", UNCERTAIN),
    ("Right lower lobe infiltrate versus atelectasis.", "Lung Opacity", UNCERTAIN),
    ("Scarring or atelectasis at the left base.", "Atelectasis", UNCERTAIN),
    ("Mild pulmonary vascular congestion.", "Edema", UNCERTAIN),
    ("No pulmonary vascular congestion.", "Edema", NEGATIVE),
    ("Blunting of the left costophrenic angle.", "Pleural Effusion", UNCERTAIN),
    ("Findings consistent with pulmonary edema.", "Edema", POSITIVE),
    ("There is a 1 cm nodule in the right upper lobe.", "Lung Lesion", POSITIVE),
    ("Healed left rib fractures.", "Fracture", POSITIVE),
    ("Left PICC line with tip in the SVC.", "Support Devices", POSITIVE),
    ("Endotracheal tube terminates 4 cm above the carina.", "Support Devices", POSITIVE),
    ("Biapical pleural thickening.", "Pleural Other", POSITIVE),
])
def test_mention_classification(text, label, expected):
    assert code(text, label) == expected


@pytest.mark.parametrize("text,label,expected", [
    ("The heart is normal in size.", "Cardiomegaly", NEGATIVE),
    ("Normal heart size.", "Cardiomegaly", NEGATIVE),
    ("The heart is not enlarged.", "Cardiomegaly", NEGATIVE),
    ("The heart is mildly enlarged.", "Cardiomegaly", POSITIVE),
    ("There is enlargement of the cardiac silhouette.", "Cardiomegaly", POSITIVE),
    ("Stable cardiomegaly.", "Cardiomegaly", POSITIVE),  # a stable abnormality is present
    ("Heart size is stable.", "Cardiomegaly", UNCERTAIN),  # CheXpert: stable size is uncertain
    ("Borderline cardiomegaly.", "Cardiomegaly", UNCERTAIN),
    ("The mediastinum is widened.", "Enlarged Cardiomediastinum", POSITIVE),
    ("Cardiomediastinal silhouette is within normal limits.", "Enlarged Cardiomediastinum", NEGATIVE),
    ("The heart is normal in size and the mediastinum is widened.", "Cardiomegaly", NEGATIVE),
    ("The heart is normal in size and the mediastinum is widened.", "Enlarged Cardiomediastinum", POSITIVE),
    ("The lungs are clear. The heart is seen.", "Cardiomegaly", BLANK),  # a bare subject is no mention
])
def test_heart_and_mediastinum_need_a_qualifier(text, label, expected):
    assert code(text, label) == expected


def test_negation_scope_ends_at_termination_terms():
    result = codes("No effusion but there is cardiomegaly.")
    assert result["Pleural Effusion"] == NEGATIVE
    assert result["Cardiomegaly"] == POSITIVE
    result = codes("No pneumothorax; small left effusion.")
    assert result["Pneumothorax"] == NEGATIVE and result["Pleural Effusion"] == POSITIVE


def test_negation_covers_a_long_list_and_stays_in_its_sentence():
    result = codes("No evidence of pneumothorax, consolidation, effusion, edema, nodules, masses, or fracture. "
                   "Mild cardiomegaly.")
    for label in ("Pneumothorax", "Consolidation", "Pleural Effusion", "Edema", "Lung Lesion", "Fracture"):
        assert result[label] == NEGATIVE, label
    assert result["Cardiomegaly"] == POSITIVE


def test_post_trigger_does_not_reach_across_a_comma():
    assert code("Small effusion, heart size is normal.", "Pleural Effusion") == POSITIVE


def test_pseudo_negation_does_not_negate():
    assert code("No change in the left pleural effusion.", "Pleural Effusion") == POSITIVE
    assert code("No significant change in right pneumothorax.", "Pneumothorax") == POSITIVE


def test_exclusions_are_not_mentions():
    assert code("Mild pericardial effusion.", "Pleural Effusion") == BLANK
    assert code("Visceral pleural line is not seen.", "Support Devices") == BLANK
    assert code("No mass effect.", "Lung Lesion") == BLANK
    assert code("Bilateral breast prostheses.", "Support Devices") == BLANK


def test_uncertain_conjunction_loses_to_negation():
    result = codes("No pleural effusion or pneumothorax.")
    assert result["Pleural Effusion"] == NEGATIVE and result["Pneumothorax"] == NEGATIVE


# ---- aggregation and No Finding -----------------------------------------------------------------

def test_aggregation_positive_over_uncertain_over_negative():
    assert code("No right effusion. Small left effusion.", "Pleural Effusion") == POSITIVE
    assert code("Possible small effusion. No large effusion.", "Pleural Effusion") == UNCERTAIN
    assert code("Possible effusion. Large left effusion. No right effusion.", "Pleural Effusion") == POSITIVE


def test_no_finding_rule():
    assert codes("No acute cardiopulmonary abnormality.") == {NO_FINDING: POSITIVE}
    normal = codes("The heart is normal in size. The lungs are clear. No pleural effusion or pneumothorax.")
    assert normal[NO_FINDING] == POSITIVE
    assert code("Mild cardiomegaly.", NO_FINDING) == BLANK
    assert code("Possible pneumonia.", NO_FINDING) == BLANK  # uncertain pathology rules it out
    # Support Devices do not count as a finding
    devices = codes("Left PICC line in place. Lungs are clear.")
    assert devices == {"Support Devices": POSITIVE, NO_FINDING: POSITIVE}
    # abnormalities outside the 13 observations also rule out No Finding (CheXpert's list)
    assert codes("Calcified granuloma in the right upper lobe.") == {}
    assert codes("Degenerative changes of the thoracic spine.") == {}
    # No Finding is never negative
    assert NEGATIVE not in label_reports(["Large effusion.", "No effusion.", ""])[:, CHEXPERT_LABELS.index(NO_FINDING)]


def test_empty_report_is_no_finding_only():
    for text in ("", "   ", "\n", "."):
        assert codes(text) == {NO_FINDING: POSITIVE}


def test_heart_failure_makes_cardiomegaly_uncertain():
    result = codes("Findings consistent with CHF.")
    assert result["Edema"] == POSITIVE and result["Cardiomegaly"] == UNCERTAIN
    assert codes("Cardiomegaly without heart failure.")["Cardiomegaly"] == POSITIVE


# ---- IU X-Ray anonymisation, sentences, other surface forms ------------------------------------

def test_xxxx_tokens_are_inert_words():
    assert codes("XXXX") == {NO_FINDING: POSITIVE}
    assert codes("XXXX XXXX are intact.") == {NO_FINDING: POSITIVE}
    # counts as a word inside a negation scope
    assert code("There are no XXXX of a pleural effusion.", "Pleural Effusion") == NEGATIVE
    # never matches a short phrase such as "fx"
    assert code("Normal chest x-XXXX.", "Fracture") == BLANK


def test_xxxx_in_device_and_angle_contexts():
    assert code("Right XXXX-a-XXXX is in place.", "Support Devices") == POSITIVE
    assert code("Left chest XXXX with tip in the mid SVC.", "Support Devices") == POSITIVE
    assert code("Blunting of the right costophrenic XXXX.", "Pleural Effusion") == UNCERTAIN


def test_multiple_sentences_and_r2gen_cleaned_text():
    text = "the heart is normal in size . there is a small left pleural effusion . no pneumothorax ."
    result = codes(text)
    assert result["Cardiomegaly"] == NEGATIVE
    assert result["Pleural Effusion"] == POSITIVE
    assert result["Pneumothorax"] == NEGATIVE
    assert NO_FINDING not in result
    # a decimal point does not split a sentence (the negation still covers the nodule)
    assert code("No 1.5 cm nodule is identified.", "Lung Lesion") == NEGATIVE


def test_case_and_whitespace_do_not_matter():
    a = label_reports(["NO PLEURAL EFFUSION.\nMILD CARDIOMEGALY."])
    b = label_reports(["no   pleural effusion.  mild cardiomegaly."])
    assert np.array_equal(a, b)


# ---- speed -------------------------------------------------------------------------------------------

def _iu_texts() -> list[str]:
    try:
        return load_corpus(shared_dir()).texts
    except FileNotFoundError as exc:
        pytest.skip(f"IU X-Ray text not found ({exc}); set BENCH_SHARED")


def test_labels_at_least_1000_reports_per_second():
    """CPU time of this process (not wall time: CI machines are shared), sentence cache cold."""
    texts = _iu_texts()
    best = 0.0
    for _ in range(3):
        rules.label_sentence.cache_clear()
        start = time.process_time()
        label_reports(texts)
        best = max(best, len(texts) / max(time.process_time() - start, 1e-9))
    assert best >= 1000, f"{best:.0f} reports/s"


# ---- the scorer ----------------------------------------------------------------------------------------

def _val_pairs() -> tuple[list[str], list[str], list[str]]:
    path = shared_dir() / "data" / "iu_xray" / "annotation.json"
    if not path.exists():
        pytest.skip(f"{path} not found; set BENCH_SHARED")
    val = json.loads(path.read_text())["val"]
    ids = [e["id"] for e in val]
    refs = [e["report"] for e in val]
    hyps = refs[7:] + refs[:7]  # another study's report: a plausible, imperfect hypothesis
    return ids, hyps, refs


def test_columns_params_and_ids_never_collide_with_chexbert():
    scorer = CheXpertRulesScorer()
    ids = [c.id for c in scorer.columns()]
    assert ids[0] == "chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]"
    assert len(ids) == 6 and len(set(ids)) == 6
    assert all(i.startswith("chexpert_rules_f1[") and "chexbert" not in i for i in ids)
    assert scorer.spec == "chexpert_rules[uncertain=positive]"
    impl = scorer.fingerprint()["impl"]
    assert impl["labeler_version"] == rules.LABELER_VERSION and len(impl["rules_sha256"]) == 64
    for policy in ("negative", "exclude"):
        assert all(f"uncertain={policy}]" in c.id for c in CheXpertRulesScorer(uncertain=policy).columns())
    with pytest.raises(UsageError, match="chexpert_rules"):
        CheXpertRulesScorer(uncertain="maybe")
    with pytest.raises(UsageError):
        CheXpertRulesScorer(labels=5)


def test_registry_and_default_suite():
    from rrg_bench.metrics.suites import DEFAULT
    from rrg_bench.registry import registry

    assert registry("metrics").get("chexpert_rules") is CheXpertRulesScorer
    assert "chexpert_rules" in DEFAULT.specs


@pytest.mark.parametrize("policy", ["positive", "negative", "exclude"])
def test_scores_equal_sklearn_on_the_label_matrices(policy):
    from sklearn.metrics import classification_report

    ids, hyps, refs = _val_pairs()
    result = CheXpertRulesScorer(uncertain=policy).score(ids, hyps, refs, ScoringContext())
    ref_codes, hyp_codes = label_reports(refs), label_reports(hyps)
    positive = (POSITIVE, UNCERTAIN) if policy == "positive" else (POSITIVE,)
    y_true = np.isin(ref_codes, positive).astype(int)
    y_pred = np.isin(hyp_codes, positive).astype(int)
    if policy == "exclude":
        kept = (ref_codes != UNCERTAIN) & (hyp_codes != UNCERTAIN)
        y_true, y_pred = y_true * kept, y_pred * kept
    for labels, cols in ((14, list(range(14))), (5, list(CHEXPERT_5_INDICES))):
        report = classification_report(y_true[:, cols], y_pred[:, cols], output_dict=True, zero_division=0)
        for avg in ("micro", "macro", "weighted"):
            got = result.values[f"chexpert_rules_f1[labels={labels},avg={avg},uncertain={policy}]"]
            assert got == pytest.approx(report[f"{avg} avg"]["f1-score"], abs=1e-12), (labels, avg)
    assert set(result.per_label) == set(CHEXPERT_LABELS)
    assert list(result.stats.index) == ids


def test_aggregate_recomputes_from_resampled_rows():
    ids, hyps, refs = _val_pairs()
    scorer = CheXpertRulesScorer()
    result = scorer.score(ids, hyps, refs, ScoringContext())
    assert scorer.aggregate(result.stats) == pytest.approx(result.values, abs=0)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(ids), size=len(ids))
    resampled = scorer.aggregate(result.stats.iloc[rows])
    direct = scorer.score([ids[i] + f"#{k}" for k, i in enumerate(rows)], [hyps[i] for i in rows],
                          [refs[i] for i in rows], ScoringContext()).values
    assert resampled == pytest.approx(direct, abs=1e-12)
    assert resampled != pytest.approx(result.values, abs=1e-9)


def test_score_reports_progress_and_rejects_misaligned_input():
    calls = []

    def progress(description, total):
        calls.append((description, total))
        return lambda n: calls.append(n)

    CheXpertRulesScorer().score(["a", "b"], ["No effusion.", ""], ["Effusion.", ""], ScoringContext(progress=progress))
    assert calls == [("chexpert_rules", 4), 4]
    with pytest.raises(ValueError, match="2 study ids, 1 hypotheses"):
        CheXpertRulesScorer().score(["a", "b"], ["x"], ["y", "z"], ScoringContext())


def test_identical_reports_score_one():
    texts = ["Mild cardiomegaly. Small left effusion.", "No acute disease.", "Possible pneumonia."]
    values = CheXpertRulesScorer().score(["1", "2", "3"], texts, texts, ScoringContext()).values
    assert values["chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]"] == 1.0
