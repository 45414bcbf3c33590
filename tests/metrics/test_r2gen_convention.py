"""The R2Gen convention's rules (metrics/nlg/r2gen.py) and its ``nlg[conv=r2gen]`` wiring.

Expected cleaner outputs are worked out by hand from R2Gen's published ``clean_report_*``
functions (github.com/cuhksz-nlp/R2Gen, modules/tokenizers.py), quirks included. The
end-to-end proof — published CvT2DistilGPT2 numbers reproduced — is
tests/golden/test_cvt2distilgpt2_reproduction.py. No Java needed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rrg_bench.api.scorer import ScoringContext
from rrg_bench.errors import DataError, UsageError
from rrg_bench.metrics.nlg import NLGScorer
from rrg_bench.metrics.nlg.normalisers import R2GenCleanNormaliser, R2GenConventionNormaliser
from rrg_bench.metrics.nlg.r2gen import (
    UNK,
    R2GenSettings,
    Vocabulary,
    clean_report_iu_xray,
    clean_report_mimic_cxr,
    count_style_mismatches,
    dot_spacing,
    reference_text,
    resolve_settings,
)

# ----------------------------------------------------------------------------- cleaners


@pytest.mark.parametrize("raw, cleaned", [
    # list markers: "1. " dropped, ". 2. " -> ". "
    ("1. The heart is normal. 2. No effusion.", "the heart is normal . no effusion ."),
    # ".." -> "."; commas and parentheses go
    ("Heart size normal.. Lungs clear, no pneumothorax (left).",
     "heart size normal . lungs clear no pneumothorax left ."),
    # ":-\[" is a range: @ < > ; = go, the hyphen stays; the double spaces left behind stay too
    ("T-spine @ level <5>; x-ray = ok.", "t-spine  level 5 x-ray  ok ."),
    # quotes, slashes and apostrophes are deleted, not replaced by spaces
    ('The "left" lung\'s base/apex.', "the left lungs baseapex ."),
    # " 2. " (no preceding period) also starts a sentence
    ("Heart normal 2. lungs clear", "heart normal . lungs clear ."),
    # "1. " inside a number is a list marker too
    ("Nodule measures 11. 5 cm.", "nodule measures 15 cm ."),
    # IU keeps line breaks inside a sentence (the tokeniser later splits on them)
    ("No acute disease.\nStable.", "no acute disease\nstable ."),
    # an empty report still ends with " ."
    ("", " ."),
    # "___" loses every underscore; double spaces are not touched by the IU cleaner
    ("Tube in ___ position.. Lungs  clear.", "tube in  position . lungs  clear ."),
])
def test_iu_xray_cleaner(raw, cleaned):
    assert clean_report_iu_xray(raw) == cleaned


@pytest.mark.parametrize("raw, cleaned", [
    # MIMIC turns "\n" into a space first, so the period now ends a sentence
    ("No acute disease.\nStable.", "no acute disease . stable ."),
    # "___" -> "_", double spaces -> one, ".." -> "." before the sentence split
    ("Tube in ___ position.. Lungs  clear.", "tube in  position . lungs clear ."),
    ("1. ET tube in place. 2. No pneumothorax.", "et tube in place . no pneumothorax ."),
    ("", " ."),
])
def test_mimic_cxr_cleaner(raw, cleaned):
    assert clean_report_mimic_cxr(raw) == cleaned


def test_tok_r2gen_normaliser_keeps_its_documented_behaviour():
    """``tok=r2gen`` now reuses the convention's cleaner: same rules, plus its empty -> "" choice."""
    clean = R2GenCleanNormaliser().clean
    assert clean("Tube in ___ position.. Lungs  clear.") == "tube in position . lungs clear ."
    assert clean("") == "" and clean(" ... ") == ""

# ----------------------------------------------------------------------------- vocabulary and round trip


def test_vocabulary_counts_cleaned_train_tokens_against_the_threshold():
    vocab = Vocabulary.from_reports(["A b b", "b c", "C d."], cleaner="iu_xray", threshold=2)
    assert vocab.words == frozenset({"b", "c", "."})  # "." is counted like any word (3 times)
    assert vocab.size == 4  # R2Gen's get_vocab_size(): words + <unk>
    assert vocab.n_reports == 3
    assert vocab.encode("a b x .") == [UNK, "b", UNK, "."]
    other = Vocabulary.from_reports(["A b b", "b c", "C d."], cleaner="iu_xray", threshold=1)
    assert other.words == {"a", "b", "c", "d", "."} and other.sha256 != vocab.sha256


def test_reference_keeps_max_seq_length_minus_one_tokens():
    """R2Gen encodes [BOS] + words + [EOS], cuts the ids to max_seq_length and decodes from
    position 1: max_seq_length - 1 words survive, and a text that fits is untouched."""
    vocab = Vocabulary.from_reports(["b c"], cleaner="iu_xray", threshold=1)
    settings = R2GenSettings("iu_xray", threshold=1, max_seq_length=4)
    assert reference_text("B c b c.", vocab, settings) == "b c b"
    assert reference_text("B z.", vocab, settings) == f"b {UNK} ."  # 3 words: exactly fits
    assert reference_text("", vocab, settings) == "."  # R2Gen's empty reference


def test_dot_spacing_is_cvt2distilgpt2s_last_step():
    assert dot_spacing("the heart is normal. no effusion.") == "the heart is normal . no effusion ."
    assert dot_spacing("heart normal . lungs clear .") == "heart normal . lungs clear ."  # R2Gen text: no-op
    assert dot_spacing("measures 2.5 cm") == "measures 2 .5 cm"
    assert dot_spacing(" a.") == " a ."  # a single leading space stays (ROUGE-L counts it upstream)
    assert dot_spacing("a\nb.\r\nc") == "a b . c"  # line breaks never reach METEOR's line protocol
    assert dot_spacing("") == ""


def test_style_mismatches_are_counted():
    assert count_style_mismatches(["heart normal .", "x-ray 2 .5 cm", ""]) == 0
    assert count_style_mismatches(["Heart normal.", "no effusion, no edema", "a (b)", "ok"]) == 3

# ----------------------------------------------------------------------------- settings


def test_settings_default_to_r2gens_per_dataset():
    assert resolve_settings("iu_xray/r2gen") == R2GenSettings("iu_xray", 3, 60)
    assert resolve_settings("mimic_cxr/official") == R2GenSettings("mimic_cxr", 10, 100)
    assert resolve_settings("iu_xray/r2gen", max_seq_length=100) == R2GenSettings("iu_xray", 3, 100)
    assert resolve_settings("demo", cleaner="iu_xray", threshold=1, max_seq_length=10) == \
        R2GenSettings("iu_xray", 1, 10)
    assert R2GenSettings("iu_xray", 3, 60).kept_tokens == 59


@pytest.mark.parametrize("dataset, params, match", [
    ("demo", {}, "no defaults for dataset 'demo'"),
    (None, {"cleaner": "iu_xray"}, "without a dataset"),
    ("iu_xray/r2gen", {"threshold": 0}, "threshold"),
    ("iu_xray/r2gen", {"max_seq_length": 1}, "max_seq_length"),
    ("iu_xray/r2gen", {"cleaner": "chexpert"}, "unknown cleaner"),
])
def test_settings_errors(dataset, params, match):
    with pytest.raises(UsageError, match=match):
        resolve_settings(dataset, **params)

# ----------------------------------------------------------------------------- nlg[conv=r2gen]


def test_spec_and_columns_name_the_convention():
    assert NLGScorer().spec == "nlg[tok=ptb]"  # unchanged default
    assert NLGScorer().fingerprint()["params"] == {"tok": "ptb"}
    scorer = NLGScorer(conv="r2gen")
    assert scorer.spec == "nlg[conv=r2gen]"
    assert scorer.fingerprint()["params"] == {"conv": "r2gen"}
    ids = [c.id for c in scorer.columns()]
    assert ids == ["bleu1[conv=r2gen]", "bleu2[conv=r2gen]", "bleu3[conv=r2gen]", "bleu4[conv=r2gen]",
                   "meteor[conv=r2gen]", "rouge_l[conv=r2gen]", "cider_d[conv=r2gen]"]
    assert not set(ids) & {c.id for c in NLGScorer().columns()}
    assert not set(ids) & {c.id for c in NLGScorer(tok="r2gen").columns()}
    assert all("R2Gen convention" in c.convention and "\n" not in c.convention for c in scorer.columns())
    assert isinstance(scorer.normaliser, R2GenConventionNormaliser)
    custom = NLGScorer(conv="r2gen", threshold="10", max_seq_length="100", cleaner="mimic_cxr")
    assert custom.spec == "nlg[cleaner=mimic_cxr,conv=r2gen,max_seq_length=100,threshold=10]"


@pytest.mark.parametrize("params, match", [
    ({"conv": "r2gen", "tok": "ptb"}, "drop tok=ptb"),
    ({"threshold": "3"}, "only apply with conv=r2gen"),
    ({"conv": "nltk"}, "conv"),
    ({"conv": "r2gen", "max_seq_length": "1"}, "max_seq_length"),
])
def test_invalid_parameter_combinations(params, match):
    with pytest.raises(UsageError, match=match):
        NLGScorer(**params)


def _ctx(train: list[str], calls: list[int] | None = None, dataset: str = "iu_xray/r2gen") -> ScoringContext:
    def train_references() -> list[str]:
        if calls is not None:
            calls.append(1)
        return train

    return ScoringContext(dataset=dataset, train_references=train_references)


def test_prepare_processes_references_only_and_builds_the_vocabulary_once():
    train = ["The heart is normal. No effusion."] * 3 + ["Rare word once."]
    calls: list[int] = []
    ctx = _ctx(train, calls)
    norm = R2GenConventionNormaliser()
    hyps = ["the heart is normal. no effusion.", "The Heart."]
    refs = ["The heart is normal. Rare effusion.", "No effusion."]
    hyp_t, ref_t, notes = norm.prepare(hyps, refs, ctx, timeout_s=10)
    assert hyp_t == ["the heart is normal . no effusion .", "The Heart ."]  # as emitted, dots spaced
    assert ref_t == [f"the heart is normal . {UNK} effusion .", "no effusion ."]
    assert len(notes) == 1 and "1 of 2 predictions" in notes[0]
    facts = norm.facts()["r2gen"]
    assert facts == {**facts, "dataset": "iu_xray/r2gen", "cleaner": "iu_xray", "threshold": 3,
                     "max_seq_length": 60, "vocab_from": "train", "train_reports": 4, "vocab_size": 8}
    norm.prepare(hyps, refs, ctx, timeout_s=10)
    assert calls == [1]  # the same source is read once
    norm.prepare(hyps, refs, _ctx(train, calls), timeout_s=10)
    assert calls == [1, 1]  # another source (another run) is read again


def test_prepare_needs_train_references_and_a_known_dataset():
    norm = R2GenConventionNormaliser()
    with pytest.raises(UsageError, match="train"):
        norm.prepare(["a"], ["b"], ScoringContext(dataset="iu_xray/r2gen"), timeout_s=10)
    with pytest.raises(UsageError, match="no defaults for dataset 'demo'"):
        norm.prepare(["a"], ["b"], _ctx(["b"], dataset="demo"), timeout_s=10)
    explicit = R2GenConventionNormaliser(cleaner="iu_xray", threshold=1, max_seq_length=3)
    assert explicit.prepare(["b"], ["B b b."], _ctx(["b"], dataset="demo"), timeout_s=10)[1] == ["b b"]
    with pytest.raises(UsageError, match="has no reports"):
        norm.prepare(["a"], ["b"], _ctx([]), timeout_s=10)

    def missing() -> list[str]:
        raise DataError("/data/iu_xray: annotation.json not found")

    ctx = ScoringContext(dataset="iu_xray/r2gen", train_references=missing)
    with pytest.raises(UsageError, match="needs the train split of iu_xray/r2gen.*annotation.json not found"):
        norm.prepare(["a"], ["b"], ctx, timeout_s=10)

# ----------------------------------------------------------------------------- real IU X-Ray text


def test_real_references_are_truncated_vocabulary_encodings(iu_source: Path):
    ann = json.loads((iu_source / "annotation.json").read_text())
    settings = resolve_settings("iu_xray/r2gen")
    vocab = Vocabulary.from_reports([e["report"] for e in ann["train"]], cleaner="iu_xray", threshold=3)
    assert vocab.n_reports == 2069
    truncated = with_unk = 0
    for entry in ann["test"]:
        full = vocab.encode(clean_report_iu_xray(entry["report"]))
        ref = reference_text(entry["report"], vocab, settings).split(" ")
        assert ref == full[:59] and set(ref) <= vocab.words | {UNK}
        assert dot_spacing(" ".join(ref)) == " ".join(ref)  # the dot step is a no-op on references
        truncated += len(full) > 59
        with_unk += UNK in ref
    assert truncated > 0 and with_unk > 0  # both steps matter on this split
