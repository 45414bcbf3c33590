"""pycocoevalcap 1.2's BLEU, ROUGE-L and CIDEr-D with their hot loops rewritten, every value the same.

Why: with the JVMs kept alive, a 590-study NLG call spent most of its Python time in three
loops (cProfile, benchmarks/README.md): ``rouge.my_lcs`` (an O(n*m) table of Python lists),
``np.log`` called once per n-gram occurrence in CIDEr's ``counts2vec``, and each scorer's own
``precook`` counting the same n-grams of the same texts twice (BLEU and CIDEr), every count,
document frequency and weight looked up in dicts keyed by word tuples (a tuple's hash is
recomputed at each lookup). Here:

- the LCS length comes from the bit-parallel algorithm (Allison & Dix 1986; Hyyrö 2004) on
  Python integers: an exact integer, so ROUGE-L's formula, kept verbatim, gives the same float;
- n-grams are counted once per distinct text (:class:`NgramCounts`) and shared by BLEU and
  CIDEr-D, under integer keys numbered for all texts at once with numpy (one key per distinct
  n-gram of the call), in the order and with the counts ``precook`` produces;
- CIDEr-D's ``np.log(max(1.0, df))`` is computed once per distinct document frequency; every
  other operation of ``counts2vec``/``sim`` is pycocoevalcap's, in its order, on Python floats
  where pycocoevalcap has numpy float64 scalars (the same IEEE double operations: ``-``, ``*``,
  ``/``, ``+``, ``min`` and libm's ``pow``; ``np.log``, ``np.sqrt`` and ``np.e`` stay numpy's),
  its sums run left to right from 0.0 as its ``+=`` loops do (``functools.reduce``), and each
  distinct text's vector is built once.

The corpus arithmetic stays in pycocoevalcap's own classes (``BleuScorer.compute_score``,
``Rouge.compute_score``, ``CiderScorer.compute_score``). tests/metrics/test_fast_coco.py
compares every value, per study and corpus, and the cooked BLEU statistics with pycocoevalcap
called directly (``==``, not a tolerance).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from itertools import chain, repeat
from operator import add, mul
from typing import Any

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider_scorer import CiderScorer
from pycocoevalcap.rouge.rouge import Rouge

#: one text's n-gram counts: for each order k = 1..n, {n-gram key: count} in first-occurrence order
TextCounts = list[dict[int, int]]


@dataclass(frozen=True)
class NgramCounts:
    """``precook``'s counts of many texts, keyed by integers: ``counts[i][k - 1]`` maps each k-gram of
    text ``i`` (``split()`` tokens) to its count, in the order ``precook`` first meets it.

    A key stands for one word sequence in every text of the call (``key % n`` is its order minus
    one); identical texts share one (read-only) :data:`TextCounts`. :meth:`gram` turns a key back
    into its words."""

    n: int
    lengths: list[int]
    counts: list[TextCounts]
    words: list[str]
    #: per order, the sorted codes ``prefix id * len(words) + last word id`` that number its n-grams
    codes: list[np.ndarray]

    @classmethod
    def of(cls, texts: Sequence[str], n: int = 4) -> NgramCounts:
        """Number every 1..n-gram of ``texts`` and count them per text.

        A k-gram's number is its rank among the distinct codes ``(k-1)-gram number * V + last
        word``, so all texts are numbered in a few vectorised passes; codes stay below
        (tokens in the call) * V, far inside int64. Runs of tokens that cross from one text into
        the next are numbered too but never counted."""
        first: dict[str, int] = {}
        index = [first.setdefault(text, len(first)) for text in texts]
        vocab: dict[str, int] = {}
        tokens = [text.split() for text in first]
        lengths = [len(t) for t in tokens]
        ids = np.fromiter((vocab.setdefault(w, len(vocab)) for t in tokens for w in t), dtype=np.int64,
                          count=sum(lengths))
        size = max(len(vocab), 1)
        levels, codes = [ids], [np.arange(len(vocab), dtype=np.int64)]
        for k in range(2, n + 1):
            uniq, rank = np.unique(levels[-1][:-1] * size + ids[k - 1:], return_inverse=True)
            levels.append(rank.reshape(-1))
            codes.append(uniq)
        keys = [(level * n + k).tolist() for k, level in enumerate(levels)]
        starts = np.zeros(len(first) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        per_text = [[Counter(keys[k][s:s + length - k]) if length > k else {} for k in range(n)]
                    for s, length in zip(starts.tolist(), lengths)]
        return cls(n, [lengths[i] for i in index], [per_text[i] for i in index], list(vocab), codes)

    def gram(self, key: int) -> tuple[str, ...]:
        """The words an n-gram key stands for."""
        order, rank = key % self.n, key // self.n
        words: list[str] = []
        for k in range(order, 0, -1):
            rank, last = divmod(int(self.codes[k][rank]), len(self.words))
            words.append(self.words[last])
        words.append(self.words[rank])
        return tuple(reversed(words))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (``rouge.my_lcs``), bit-parallel."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


class FastRouge(Rouge):  # type: ignore[misc]  # pycocoevalcap ships no type hints
    """``Rouge`` with ``my_lcs`` replaced by :func:`lcs_length`; ``calc_score``'s formula verbatim."""

    def calc_score(self, candidate: list[str], refs: list[str]) -> float:
        assert len(candidate) == 1
        assert len(refs) > 0
        prec = []
        rec = []
        token_c = candidate[0].split(" ")
        for reference in refs:
            token_r = reference.split(" ")
            lcs = lcs_length(token_r, token_c)
            prec.append(lcs / float(len(token_c)))
            rec.append(lcs / float(len(token_r)))
        prec_max = max(prec)
        rec_max = max(rec)
        if prec_max != 0 and rec_max != 0:
            score = ((1 + self.beta**2) * prec_max * rec_max) / float(rec_max + self.beta**2 * prec_max)
        else:
            score = 0.0
        return score


def bleu_scorer(hyp_counts: Sequence[tuple[int, TextCounts]], ref_counts: Sequence[Sequence[tuple[int, TextCounts]]],
                n: int = 4) -> BleuScorer:
    """A ``BleuScorer`` holding what ``scorer += (hyp, refs)`` would cook, from counted texts
    (``(length, counts)`` each): ``cook_refs`` and ``cook_test`` with ``eff=None``, as ``__iadd__``.

    ``crefs`` holds each study's clipping maxima per order (``cook_refs`` has one dict over all
    orders; ``compute_score`` reads only ``ctest``)."""
    scorer = BleuScorer(n=n)
    for (testlen, counts), refs in zip(hyp_counts, ref_counts, strict=True):
        reflen = [length for length, _ in refs]
        if len(refs) == 1:  # one reference: its counts are the maxima
            maxcounts = refs[0][1]
        else:
            maxcounts = [{} for _ in range(n)]
            for _, rcounts in refs:
                for most, order in zip(maxcounts, rcounts):
                    for ngram, count in order.items():
                        most[ngram] = max(most.get(ngram, 0), count)
        scorer.crefs.append((reflen, maxcounts))
        correct = [sum(map(min, map(most.get, order.keys(), repeat(0)), order.values()))
                   for most, order in zip(maxcounts, counts)]
        scorer.ctest.append({"reflen": reflen, "testlen": testlen,
                             "guess": [max(0, testlen - k + 1) for k in range(1, n + 1)], "correct": correct})
    return scorer


class FastCiderScorer(CiderScorer):  # type: ignore[misc]  # pycocoevalcap ships no type hints
    """``CiderScorer`` fed counted texts (:class:`NgramCounts`), each distinct text's vector built once."""

    def __init__(self, hyp_counts: Sequence[TextCounts], ref_counts: Sequence[Sequence[TextCounts]],
                 n: int = 4, sigma: float = 6.0) -> None:
        super().__init__(n=n, sigma=sigma)
        self.ctest = list(hyp_counts)
        self.crefs = [list(refs) for refs in ref_counts]

    def compute_doc_freq(self) -> None:
        """``compute_doc_freq``'s table (per n-gram, the studies whose references have it, as a float),
        counted by ``Counter`` in C instead of one ``+= 1`` per n-gram and study."""
        studies = Counter(chain.from_iterable(
            chain.from_iterable(refs[0]) if len(refs) == 1 else {g for ref in refs for order in ref for g in order}
            for refs in self.crefs))
        self.document_frequency.update(zip(studies.keys(), map(float, studies.values())))

    def compute_cider(self) -> list[Any]:
        self.ref_len = np.log(float(len(self.crefs)))
        ref_len = float(self.ref_len)
        # ref_len - np.log(max(1.0, df)) per n-gram, np.log taken once per distinct df; an n-gram no
        # reference has gets ref_len - np.log(1.0) == ref_len
        log_of = {df: float(np.log(max(1.0, df))) for df in set(self.document_frequency.values())}
        weight = {g: ref_len - log_of[df] for g, df in self.document_frequency.items()}
        vectors: dict[int, tuple[list[dict[int, float]], list[Any], int]] = {}

        def counts2vec(cnts: TextCounts) -> tuple[list[dict[int, float]], list[Any], int]:
            memo = vectors.get(id(cnts))  # identical texts share one counts object (NgramCounts)
            if memo is not None:
                return memo
            vec = [{g: float(tf) * weight.get(g, ref_len) for g, tf in order.items()} for order in cnts]
            norm = [np.sqrt(reduce(add, map(pow, values.values(), repeat(2)), 0.0)) for values in vec]
            vectors[id(cnts)] = memo = (vec, norm, sum(cnts[1].values()) if self.n > 1 else 0)
            return memo

        def sim(vec_hyp: list[dict[int, float]], vec_ref: list[dict[int, float]],
                norm_hyp: list[Any], norm_ref: list[Any], length_hyp: int, length_ref: int) -> np.ndarray:
            delta = float(length_hyp - length_ref)
            val = [0.0 for _ in range(self.n)]
            for n in range(self.n):
                hyp_n = vec_hyp[n]
                ref_values = list(map(vec_ref[n].get, hyp_n.keys(), repeat(0.0)))  # 0.0: the defaultdict's
                total = reduce(add, map(mul, map(min, hyp_n.values(), ref_values), ref_values), 0.0)
                if (norm_hyp[n] != 0) and (norm_ref[n] != 0):
                    total /= (norm_hyp[n] * norm_ref[n])
                assert not math.isnan(total)
                total *= np.e**(-(delta**2) / (2 * self.sigma**2))
                val[n] = total
            return np.array(val)

        scores = []
        for test, refs in zip(self.ctest, self.crefs):
            vec, norm, length = counts2vec(test)
            score = np.array([0.0 for _ in range(self.n)])
            for ref in refs:
                vec_ref, norm_ref, length_ref = counts2vec(ref)
                score += sim(vec, vec_ref, norm, norm_ref, length, length_ref)
            score_avg = np.mean(score)
            score_avg /= len(refs)
            score_avg *= 10.0
            scores.append(score_avg)
        return scores
