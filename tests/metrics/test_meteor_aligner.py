"""The METEOR server's aligner (``JarAligner`` in metrics/nlg/meteor_server.py) against the jar's.

The server transcribes ``Aligner.align`` and finds the stem and synonym stages' matches from
per-word memos instead of the jar's pair-by-pair loops. The claim: for every pair, the
statistics line is the jar's, byte for byte. IU reports alone rarely put two words of one
synonym set or one stem side by side, so this test builds lines from words that do (inflections,
WordNet synonyms of report words, words that are both), repeated, capitalised and mixed with
report words, and checks that both stages really matched many times.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from helpers.meteor_texts import ODD_TEXTS
from rrg_bench.metrics.nlg import meteor_server, paraphrases
from rrg_bench.metrics.nlg.java import java_executable, require_java
from rrg_bench.metrics.nlg.meteor import MeteorProcess
from rrg_bench.metrics.nlg.meteor_server import MeteorServer

needs_java = pytest.mark.skipif(java_executable() is None, reason="needs Java")

#: groups of words that share a stem or a WordNet synonym set, and report words in such sets
GROUPS = [g.split() for g in """lung lungs | heart hearts | size sizes sized sizing | effusion effusions |
opacity opacities | appear appears appeared appearing | show shows showed shown | change changes changed |
rib ribs | fracture fractures fractured | base bases | sign signs | study studies studied | examine examined |
test tests tested | contour contours | volume volumes | seem seems seemed | demonstrate demonstrates |
large big great | small little minor | mild slight | acute sharp | disease illness | stable steady |
unchanged same identical | clear clearer clearly | free clear | intact whole | good well | bad ill sick |
low lower | high higher upper | top upper | bottom lower base | outline contour shape form | chest thorax |
exam examination test | prior previous earlier | new recent | spine back | broken fractured | run ran running |
go went gone goes | see seen sees saw | focus focal | air space | normal usual""".split("|")]


def _pairs(report_words: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """n (hypothesis, reference) pairs; most of a reference's words are another word of a group a
    hypothesis word belongs to, the rest group or report words at random."""
    rng = random.Random(seed)
    group_of = {w: g for g in GROUPS for w in g}
    vocab = [w for g in GROUPS for w in g] + report_words
    hyps, refs = [], []
    for _ in range(n):
        hyp = [rng.choice(vocab) for _ in range(rng.randint(1, 30))]
        ref = [rng.choice([v for v in group_of[w] if v != w]) if w in group_of and rng.random() < 0.8
               else rng.choice(vocab) for w in hyp]
        rng.shuffle(ref)
        ref = ref[: rng.randint(1, len(ref))] + [rng.choice(vocab) for _ in range(rng.randint(0, 5))]
        for words in (hyp, ref):
            if rng.random() < 0.2:
                words[:] = [w.capitalize() if rng.random() < 0.5 else w for w in words]
            if rng.random() < 0.1:
                words += words[: rng.randint(1, len(words))]  # repeated words: several candidates per word
        hyps.append(" ".join(hyp))
        refs.append(" ".join(ref) if rng.random() < 0.9 else hyps[-1])  # the same words: the jar's exact stage only
    return hyps, refs


@needs_java
@pytest.mark.timeout(900)
def test_the_servers_alignments_give_the_jars_statistics(iu_source: Path):
    java = require_java()
    reports = [e["report"] for e in json.loads((iu_source / "annotation.json").read_text())["test"]]
    counts: dict[str, int] = {}
    for report in reports:
        for word in report.lower().replace(".", " ").replace(",", " ").split():
            counts[word] = counts.get(word, 0) + 1
    report_words = sorted(counts, key=lambda w: (-counts[w], w))[:300]
    hyps, refs = _pairs(report_words, 3000, seed=1)
    hyps[:4] = ["normal heart size", "", "Lungs lungs LUNGS", "lung"]
    refs[:4] = ["normal heart size", "lung", "lung", "lungs"]
    hyps += ODD_TEXTS + reports[:200]
    refs += ODD_TEXTS[::-1] + reports[200:400]
    classes = meteor_server.server_classes(java, timeout_s=300)
    assert classes is not None, "Java 17 can compile the server"
    index = paraphrases.load_index()
    assert index is not None
    with MeteorProcess(java=java) as jar:
        expected = jar.segment_stats(hyps, refs)
    with MeteorServer(java=java, classes=classes) as server:
        server.fit_table(hyps, refs, index)
        got = server.segment_stats(hyps, refs)
        assert server.segment_stats(hyps[::-1], refs[::-1]) == expected[::-1]  # memos filled: same again
    differing = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    assert not differing, (f"{len(differing)} of {len(hyps)} statistics lines differ, first: study "
                           f"{differing[0]}: {hyps[differing[0]]!r} / {refs[differing[0]]!r}: "
                           f"{got[differing[0]]} != {expected[differing[0]]}")
    # the point of the text: the stem stage (statistics 8-11) and the synonym stage (12-15) matched often (the
    # jar's resolution keeps few stem matches: "lung" / "lungs" alone, or "x lungs y sizes" / "z lung w size",
    # align nothing, while "lungs sizes effusions ribs" / "lung size effusion rib" align four by stem)
    stats = [[float(x) for x in line.split()] for line in expected]
    assert sum(sum(s[8:12]) for s in stats) >= 200  # 278 words when written
    assert sum(sum(s[12:16]) for s in stats) >= 1000  # 1,820


@needs_java
@pytest.mark.timeout(600)
def test_a_pair_that_exhausts_the_heap_leaves_meteor_unavailable_with_the_reason():
    """5,000 related words against 3,000: the jar's resolution exhausts its 2 GB heap (so does the plain jar:
    checked by hand); the server fails as the jar does, with the jar's error, and the other columns stand."""
    import rrg_bench

    rng = random.Random(0)
    related = "lung lungs heart size sizes large big small little normal clear".split()
    hyps = [" ".join(rng.choice(related) for _ in range(5000)), "normal heart"]
    refs = [" ".join(rng.choice(related) for _ in range(3000)), "the heart is normal"]
    scores = rrg_bench.score(hyps, refs, metrics="nlg", n_boot=0)
    reason = scores.unavailable["meteor[tok=ptb]"]
    assert 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space' in reason
    assert "study 0 with 5,000 tokens" in reason
    assert "bleu4[tok=ptb]" in scores.metrics and "cider_d[tok=ptb]" in scores.metrics
