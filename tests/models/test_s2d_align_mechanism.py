"""S2D-Align's pieces on tiny random models: retrieval, key phrases, memory adapter, every switch.

Images are synthetic stand-ins at IU X-Ray's R2Gen paths (tests/helpers/iu_images.py); reports are
the real R2Gen reports read from the shared data folder into a temporary data root.
"""

from __future__ import annotations

import pytest
import torch

from rrg_bench.baselines.common.vision import ImageConfig
from rrg_bench.baselines.s2d_align.configuration import (
    KEY_PHRASES_MARKER,
    REFERENCES_INTRO,
    REPORT_MARKER,
    MemoryConfig,
    S2DAlignConfig,
    instruction_text,
    report_from_output,
    target_text,
)
from rrg_bench.baselines.s2d_align.keyphrases import (
    extract_key_phrases,
    radgraph_available,
    rules_phrases,
)
from rrg_bench.baselines.s2d_align.model import S2DAlign
from rrg_bench.baselines.s2d_align.presets import resolve_recipe
from rrg_bench.baselines.s2d_align.references import ReferenceIndex, reference_tails
from rrg_bench.baselines.s2d_align.tiny import build_tiny_llm, tiny_vision_config, train_tokenizer
from rrg_bench.baselines.s2d_align.train import build_examples, stage_config
from rrg_bench.errors import UsageError, WeightsUnavailable
from rrg_bench.metrics.chexpert_rules.labeler import clean

N_TRAIN, N_VAL = 16, 6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(make_iu_root):
    from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen

    return IUXrayR2Gen(make_iu_root({"train": N_TRAIN, "val": N_VAL, "test": 4}))


@pytest.fixture(scope="module")
def train(dataset):
    return dataset.studies("train")[:N_TRAIN]


@pytest.fixture(scope="module")
def index(train):
    return ReferenceIndex(train, split="train", batch_size=8)


@pytest.fixture(scope="module")
def tokenizer(train):
    return train_tokenizer([s.reference for s in train], 400)


def tiny_model(tokenizer, **config) -> S2DAlign:
    torch.manual_seed(0)
    cfg = S2DAlignConfig(vision_config=tiny_vision_config(56), image=ImageConfig(size=56),
                         memory=config.pop("memory", MemoryConfig(slots=4, heads=2)), **config)
    model = S2DAlign(cfg, build_tiny_llm(tokenizer, 0))
    model.set_tokenizer(tokenizer)
    return model.eval()


# ------------------------------------------------------------------ retrieval
def test_retrieval_never_returns_the_query_nor_a_non_train_study(dataset, train, index):
    train_ids = {s.study_id for s in train}
    assert set(index.study_ids) == train_ids
    for study, refs in zip(train, index.neighbours(train, 3)):
        ids = [r for r, _ in refs]
        assert len(ids) == 3 and study.study_id not in ids and set(ids) <= train_ids
        by_id = {s.study_id: s.reference for s in train}
        assert all(text == by_id[r] for r, text in refs)
    val = dataset.studies("val")[:N_VAL]
    for refs in index.neighbours(val, N_TRAIN + 5):  # more than exist: every train study, nothing else
        assert {r for r, _ in refs} == train_ids
    ranked = index.neighbours(train[:1], N_TRAIN)[0]
    assert len(ranked) == N_TRAIN - 1 and train[0].study_id not in {r for r, _ in ranked}


def test_retrieval_image_switch_changes_which_image_is_indexed(train, index):
    """`retrieval_image` names the view the index embeds: with `first`, studies whose frontal view
    is not image 0 are embedded from another file, so the index (and its fingerprint) changes."""
    differs = [s for s in train if s.frontal_image != s.image_paths[0]]
    assert differs, "the fixture needs studies whose frontal view is not image 0"
    first = ReferenceIndex(train, split="train", batch_size=8, image="first")
    assert first.fingerprint()["train_index"] != index.fingerprint()["train_index"]
    same = [s for s in train if s.frontal_image == s.image_paths[0]]
    assert (ReferenceIndex(same, split="train", batch_size=8, image="first").fingerprint()["train_index"]
            == ReferenceIndex(same, split="train", batch_size=8).fingerprint()["train_index"])


def test_reference_index_refuses_test_and_mixed_splits(dataset, train):
    with pytest.raises(UsageError, match="never from 'test'"):
        ReferenceIndex(dataset.studies("test")[:2], split="test")
    with pytest.raises(UsageError, match="not from split 'train'"):
        ReferenceIndex([*train[:3], *dataset.studies("val")[:1]], split="train")


# ------------------------------------------------------------------ key phrases
def test_key_phrases_come_only_from_the_targets_own_report(train):
    phrases, source = extract_key_phrases([s.reference for s in train], "chexpert_rules")
    assert source == "chexpert_rules" and any(phrases)
    for study, ps in zip(train, phrases):
        own = clean(study.reference)
        assert all(p in own for p in ps), (study.study_id, ps)
    report = "Heart size is mildly enlarged. No pneumothorax. Possible left basilar atelectasis."
    assert rules_phrases(report, "all") == ["heart size", "pneumothorax", "atelectasis"]
    assert rules_phrases(report, "present") == ["heart size", "atelectasis"]  # polarity switch drops negated


def test_keyphrase_source_radgraph_without_weights_is_an_error_not_a_fallback():
    if radgraph_available():
        pytest.skip("RadGraph weights are installed here")
    with pytest.raises(WeightsUnavailable):
        extract_key_phrases(["No pneumothorax."], "radgraph")
    assert extract_key_phrases(["No pneumothorax."], "auto")[1] == "chexpert_rules"


def test_training_targets_hold_each_studys_own_phrases_and_retrieved_references(train, index, tokenizer):
    config = S2DAlignConfig(vision_config={}, stage=3, references_k=2, keyphrase_target="prefix",
                            max_report_tokens=1000)
    phrases, _ = extract_key_phrases([s.reference for s in train], "chexpert_rules")
    neighbours = index.neighbours(train, 2)
    examples = build_examples(config, tokenizer, train, neighbours, phrases)
    for ex, study, ps, refs in zip(examples, train, phrases, neighbours):
        target = tokenizer.decode(ex.target, skip_special_tokens=True)
        assert target.startswith(KEY_PHRASES_MARKER) and REPORT_MARKER in target
        listed = target.split(REPORT_MARKER)[0][len(KEY_PHRASES_MARKER):].strip(" .")
        assert listed == ("; ".join(ps) if ps else "none")
        assert report_from_output(config, target) == " ".join(study.reference.split())
        assert ex.references == tuple(r for r, _ in refs) and study.study_id not in ex.references
        assert refs[0][1].split()[0] in ex.tail and REFERENCES_INTRO in ex.tail


# ------------------------------------------------------------------ switches
def test_references_k_switch_puts_retrieved_reports_into_the_prompt(train, index, tokenizer):
    with_refs = S2DAlignConfig(vision_config={}, references_k=2, max_reference_tokens=8)
    without = S2DAlignConfig(vision_config={}, references_k=0)
    refs = index.neighbours(train[:1], 2)
    tail = reference_tails(with_refs, tokenizer, refs)[0]
    assert REFERENCES_INTRO in tail and "[1]" in tail and "[2]" in tail
    longer = instruction_text(with_refs, [r for _, r in refs[0]])
    assert len(tokenizer(tail)["input_ids"]) < len(tokenizer(longer)["input_ids"])
    assert REFERENCES_INTRO not in reference_tails(without, tokenizer, refs)[0]


def test_stage_settings_follow_the_recipe_switches(tmp_path):
    prev = S2DAlignConfig(vision_config={}, stage=2, references_k=3)
    _, keep = resolve_recipe(3, "tiny", {"init": str(tmp_path), "references_k": "2"})
    _, drop = resolve_recipe(3, "tiny", {"init": str(tmp_path), "stage3_references": "false",
                                         "keyphrase_target": "head"})
    assert stage_config(prev, 3, keep, "d", "train").references_k == 2
    three = stage_config(prev, 3, drop, "d", "train")
    assert three.references_k == 0 and three.keyphrase_target == "head" and three.stage == 3
    assert stage_config(S2DAlignConfig(vision_config={}), 2, keep, "d", "train").keyphrase_target == "none"
    with pytest.raises(UsageError, match="init="):
        resolve_recipe(2, "tiny", {})
    with pytest.raises(UsageError, match="Did you mean"):
        resolve_recipe(1, "tiny", {"refrences_k": "1"})


def test_keyphrase_target_switch_changes_the_target(tokenizer):
    report, phrases = "No pneumothorax.", ["pneumothorax"]
    assert target_text(S2DAlignConfig(vision_config={}), report, phrases) == report
    assert target_text(S2DAlignConfig(vision_config={}, keyphrase_target="head"), report, phrases) == report
    prefixed = target_text(S2DAlignConfig(vision_config={}, keyphrase_target="prefix"), report, phrases)
    assert prefixed == f"{KEY_PHRASES_MARKER} pneumothorax. {REPORT_MARKER} {report}"


def test_head_target_adds_a_phrase_loss(tokenizer):
    model = tiny_model(tokenizer, keyphrase_target="head", phrase_vocab=["effusion", "pneumothorax"])
    pixels = torch.randn(2, 3, 56, 56)
    targets = [tokenizer("No effusion.")["input_ids"], tokenizer("Clear lungs.")["input_ids"]]
    tails = [instruction_text(model.config, [])] * 2
    base = model(tails, targets, pixel_values=pixels)
    with_head = model(tails, targets, pixel_values=pixels, phrase_targets=torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert model.keyphrase_head.out_features == 2 and with_head > base


def test_memory_switches_change_the_visual_prefix(tokenizer):
    features = torch.randn(2, 17, 32)
    residual = tiny_model(tokenizer)
    append = tiny_model(tokenizer, memory=MemoryConfig(slots=4, heads=2, output="append"))
    frozen = tiny_model(tokenizer, memory=MemoryConfig(slots=4, heads=2, trainable=False))
    assert residual.visual_tokens(features).shape[1] == 17 and append.visual_tokens(features).shape[1] == 34
    assert residual.memory_adapter.bank.requires_grad and not frozen.memory_adapter.bank.requires_grad
    # the gate starts closed: the memory read is trained in, not imposed on a fresh projector
    assert torch.equal(residual.visual_tokens(features), residual.projector(features))
    with torch.no_grad():
        residual.memory_adapter.gate.fill_(1.0)
    before = residual.visual_tokens(features)
    with torch.no_grad():
        residual.memory_adapter.bank.mul_(3.0)
    assert not torch.allclose(before, residual.visual_tokens(features))  # the bank is read
    linear = tiny_model(tokenizer, projector="linear")
    assert isinstance(linear.projector, torch.nn.Linear) and isinstance(residual.projector, torch.nn.Sequential)


def test_left_padded_batches_give_the_same_greedy_output_as_single_studies(tokenizer):
    model = tiny_model(tokenizer)
    pixels = torch.randn(2, 3, 56, 56)
    tails = [instruction_text(model.config, []), "</Img> Reference reports of similar cases: [1] The heart is normal. "
             + "Generate the report.\nAssistant:"]
    together = model.generate_ids(tails, pixel_values=pixels, max_new_tokens=6, min_new_tokens=6)
    for i in range(2):
        alone = model.generate_ids(tails[i:i + 1], pixel_values=pixels[i:i + 1], max_new_tokens=6, min_new_tokens=6)
        assert together[i].tolist() == alone[0].tolist()
