"""green against RadEval's GREEN (which follows the authors' Stanford-AIMI/GREEN code), on outputs
recorded from RadEval 2.2.1 (tests/fixtures/radeval/upstream_outputs.json): the prompt, its chat
framing and token ids, the parsing of 11 judge outputs (the 5 GREEN-RadLlama2-7b outputs the
authors recorded in RadEval's test_greenscore.py, expected mean 0.25 and std 1/6, plus 6 odd
ones), the response cleaning, and an end-to-end generation with a tiny random LlamaForCausalLM."""

from __future__ import annotations

import hashlib

import pytest
from _radeval_upstream import TINY, ids, inputs, upstream

from rrg_bench.api.scorer import ScoringContext
from rrg_bench.metrics.green import parse
from rrg_bench.metrics.green.scorer import GreenScorer, stats_frame


def test_prompt_equals_radeval():
    recorded = upstream()["green"]
    e2e = recorded["e2e"]
    assert [parse.make_prompt(r, h) for r, h in zip(e2e["refs"], e2e["hyps"])] == recorded["prompts"]
    assert [parse.chat_text(p, "</s>") for p in recorded["prompts"]] == recorded["chat_texts"]
    # research notes (radeval==2.2.1 make_prompt("<REF>", "<HYP>"), run before this module existed)
    digest = hashlib.sha256(parse.make_prompt("<REF>", "<HYP>").encode()).hexdigest()
    assert digest == "3941c35ac3c53401898708012e46d76fca823a53d6ae71d892596e128d2f8d58"
    long = " ".join(f"w{i}" for i in range(400))
    assert parse.make_prompt(long, "x").count("w299") == 1 and "w300" not in parse.make_prompt(long, "x")


def test_parsing_equals_radeval_and_the_authors_recorded_outputs():
    recorded, green = upstream()["green"], inputs()["green"]
    for text, expected in zip(recorded["responses"], recorded["parsed"]):
        matched, significant = parse.matched_findings(text), parse.error_counts(text)
        assert matched == expected["matched"]
        assert significant == expected["significant"]
        assert parse.error_counts(text, parse.INSIGNIFICANT) == expected["insignificant"]
        assert parse.green_score(matched, significant) == pytest.approx(expected["green"], rel=1e-15)
    stats = stats_frame(ids(5), green["responses"])
    scorer = GreenScorer()
    values = scorer.aggregate(stats)
    assert values["green"] == pytest.approx(green["expected_mean"], rel=1e-12)
    assert values["green_std"] == pytest.approx(green["expected_std"], rel=1e-12)
    assert stats["green"].tolist() == pytest.approx([0, 1 / 6, 1 / 3, 1 / 2, 1 / 4])


def test_cleaning_equals_radeval():
    recorded = upstream()["green"]
    assert [parse.clean_response(t) for t in recorded["clean_in"]] == recorded["clean_out"]


@pytest.fixture(autouse=True)
def one_thread():
    """Hundreds of tiny decoding steps: with 2 threads on a busy machine each step waits on the other."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def judge():
    pytest.importorskip("transformers")
    from rrg_bench.metrics.green.model import TransformersJudge

    return TransformersJudge(TINY / "llama", "cpu")


def test_token_ids_equal_radeval_but_for_the_leading_bos(judge):
    """transformers 5 (RadEval's stack) drops <s> when a fast tokenizer is loaded with
    add_eos_token=True; transformers 4 (ours, and the GREEN authors') keeps it. See the card."""
    recorded = upstream()["green"]
    for text, theirs in zip(recorded["chat_texts"], recorded["input_ids"]):
        ours = judge.tokenizer(text, truncation=True, max_length=recorded["e2e"]["max_length"])["input_ids"]
        assert ours[0] == judge.tokenizer.bos_token_id and ours[1:] == theirs


def test_generation_equals_radeval_on_the_same_token_ids(judge, monkeypatch):
    import torch

    recorded = upstream()["green"]
    e2e = recorded["e2e"]
    by_prompt = dict(zip(recorded["prompts"], recorded["input_ids"]))
    pad = judge.tokenizer.pad_token_id

    def encode(prompts, max_length):  # RadEval's ids, left-padded as its tokenizer call pads them
        rows = [by_prompt[p] for p in prompts]
        width = max(len(r) for r in rows)
        return {"input_ids": torch.tensor([[pad] * (width - len(r)) + r for r in rows]),
                "attention_mask": torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])}

    class Batch(dict):
        def to(self, device):
            return self

    monkeypatch.setattr(judge, "encode", lambda p, m: Batch(encode(p, m)))
    prompts = [parse.make_prompt(r, h) for r, h in zip(e2e["refs"], e2e["hyps"])]
    got = judge.respond(prompts, batch_size=e2e["batch_size"], max_length=e2e["max_length"])
    assert got == e2e["completions"]
    assert stats_frame(ids(len(got)), got)["green"].tolist() == e2e["scores"]


def test_scorer_end_to_end_with_cache(tmp_path):
    pytest.importorskip("torch")
    from rrg_bench.cache import AnnotationCache

    e2e = upstream()["green"]["e2e"]
    scorer = GreenScorer(model_dir=str(TINY / "llama"), max_length=e2e["max_length"], batch_size=2)
    cache = AnnotationCache(tmp_path / "c.sqlite")
    first = scorer.score(ids(4), e2e["hyps"], e2e["refs"], ScoringContext(cache=cache))
    again = scorer.score(ids(4), e2e["hyps"], e2e["refs"], ScoringContext(cache=cache))
    assert first.cache_misses == 4 and again.cache_hits == 4 and again.cache_misses == 0
    assert set(first.values) == {"green[max_length=470]", "green_std[max_length=470]"}
    assert list(first.stats.columns) == ["green", "matched", "sig_a", "sig_b", "sig_c", "sig_d", "sig_e", "sig_f"]
    assert again.values == first.values
