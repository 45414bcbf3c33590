"""metrics/nlg/fast_coco.py equals pycocoevalcap 1.2's Bleu, Rouge and Cider called directly: ``==``, every value."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge, my_lcs

from rrg_bench.metrics.nlg.fast_coco import FastCiderScorer, FastRouge, NgramCounts, bleu_scorer, lcs_length
from rrg_bench.metrics.nlg.maths import coco_scores

VOCAB = ["the", "heart", "is", "normal", "no", "effusion", "lungs", "clear", "of", ".", "xxxx", "size"]


def _random_texts(seed: int, n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)

    def text() -> str:
        words = [rng.choice(VOCAB) for _ in range(rng.choice([0, 1, 2, 5, 12, 40, 90]))]
        return rng.choice([" ", "  "]).join(words)  # double spaces: empty tokens for ROUGE's split(" ")

    return [text() for _ in range(n)], [text() or "normal" for _ in range(n)]


@pytest.fixture(scope="module")
def iu_pairs(iu_source: Path) -> list[tuple[list[str], list[str]]]:
    from rrg_bench.metrics.nlg.normalisers import PTBNormaliser

    ann = json.loads((iu_source / "annotation.json").read_text())
    hyps, refs = PTBNormaliser().normalise_blocks([[e["report"] for e in ann["train"][:590]],
                                                   [e["report"] for e in ann["test"]]], timeout_s=300)
    val, train = PTBNormaliser().normalise_blocks([[e["report"] for e in ann["val"]],
                                                  [e["report"] for e in ann["train"][1000:1296]]], timeout_s=300)
    return [(hyps, refs), (val, train), _random_texts(1, 400), _random_texts(2, 3), _random_texts(3, 1500)]


def test_lcs_length_is_my_lcs():
    rng = random.Random(0)
    for _ in range(3000):
        a = [rng.choice("abcde") for _ in range(rng.randrange(0, 70))]
        b = [rng.choice("abcdef") for _ in range(rng.randrange(0, 70))]
        assert lcs_length(a, b) == my_lcs(a, b) == lcs_length(b, a)


def _decoded(counted: NgramCounts, i: int) -> dict[tuple[str, ...], int]:
    """Text ``i``'s counts with word tuples for keys, orders concatenated (``precook``'s one dict)."""
    return {counted.gram(key): count for order in counted.counts[i] for key, count in order.items()}


def test_ngram_counts_are_precooks_counts_in_its_order():
    from pycocoevalcap.cider.cider_scorer import precook

    texts = ["", "a", "a b a b a", "the heart  is the heart", " ".join(VOCAB * 3), "a", "b a b", "x",
             *_random_texts(4, 300)[0]]
    for n in (1, 2, 4, 6):
        counted = NgramCounts.of(texts, n)
        keys: dict[tuple[str, ...], int] = {}
        for i, text in enumerate(texts):
            want = precook(text, n)
            assert list(_decoded(counted, i).items()) == list(want.items())
            assert counted.lengths[i] == len(text.split())
            for k, order in enumerate(counted.counts[i]):  # per order, and one key per word sequence
                assert all(len(counted.gram(key)) == k + 1 and key % n == k for key in order)
                for key in order:
                    assert keys.setdefault(counted.gram(key), key) == key
    counted = NgramCounts.of(["a b", "c", "a b"])
    assert counted.counts[0] is counted.counts[2]  # identical texts share their counts


def test_bleu_rouge_cider_equal_pycocoevalcap(iu_pairs):
    for hyps, refs in iu_pairs:
        gts = {i: [r] for i, r in enumerate(refs)}
        res = {i: [h] for i, h in enumerate(hyps)}
        counted = NgramCounts.of([*hyps, *refs])
        hc, rc = counted.counts[:len(hyps)], counted.counts[len(hyps):]

        theirs = BleuScorer(n=4)
        for i in gts:
            theirs += (res[i][0], gts[i])
        ours = bleu_scorer([(len(h.split()), c) for h, c in zip(hyps, hc)],
                           [[(len(r.split()), c)] for r, c in zip(refs, rc)])
        assert ours.ctest == theirs.ctest
        assert [(reflen, {counted.gram(g): c for order in most for g, c in order.items()})
                for reflen, most in ours.crefs] == theirs.crefs
        assert ours.compute_score(option="closest", verbose=0) == theirs.compute_score(option="closest", verbose=0)
        assert Bleu(4).compute_score(gts, res, verbose=0)[0] == coco_scores(hyps, refs).bleu

        r_mean, r_items = Rouge().compute_score(gts, res)
        f_mean, f_items = FastRouge().compute_score(gts, res)
        assert f_mean == r_mean and np.array_equal(f_items, r_items)

        c_mean, c_items = Cider().compute_score(gts, res)
        d_mean, d_items = FastCiderScorer(hc, [[c] for c in rc]).compute_score()
        assert d_mean == c_mean and np.array_equal(d_items, c_items)
        assert coco_scores(hyps, refs).cider_d_items == [float(x) for x in c_items]


def test_several_references_per_study_equal_pycocoevalcap():
    """BLEU's clipping maxima and CIDEr-D's document frequencies over several references (the
    harness scores one per study; the classes take more, as pycocoevalcap's do)."""
    hyps, refs = _random_texts(5, 300)
    more, _ = _random_texts(6, 300)
    gts = {i: [r, m or "effusion"] for i, (r, m) in enumerate(zip(refs, more))}
    res = {i: [h] for i, h in enumerate(hyps)}
    counted = NgramCounts.of([*hyps, *(t for i in gts for t in gts[i])])
    hc, rc = counted.counts[:len(hyps)], counted.counts[len(hyps):]
    rl = counted.lengths[len(hyps):]
    theirs = BleuScorer(n=4)
    for i in gts:
        theirs += (res[i][0], gts[i])
    ours = bleu_scorer([(len(h.split()), c) for h, c in zip(hyps, hc)],
                       [[(rl[2 * i], rc[2 * i]), (rl[2 * i + 1], rc[2 * i + 1])] for i in range(len(hyps))])
    assert ours.ctest == theirs.ctest
    assert [(reflen, {counted.gram(g): c for order in most for g, c in order.items()})
            for reflen, most in ours.crefs] == theirs.crefs
    assert ours.compute_score(option="closest", verbose=0) == theirs.compute_score(option="closest", verbose=0)
    c_mean, c_items = Cider().compute_score(gts, res)
    d_mean, d_items = FastCiderScorer(hc, [[rc[2 * i], rc[2 * i + 1]] for i in range(len(hyps))]).compute_score()
    assert d_mean == c_mean and np.array_equal(d_items, c_items)
