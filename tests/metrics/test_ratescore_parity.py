"""ratescore: our batched, cached RaTEScore against the ``ratescore`` 0.6.0 package itself, both
run here on the same tiny random models of the real classes (DeBERTa-v2 tagger with RaTE-NER's
labels, MPNet embedder), the package at its default batch_size=1, ours in batches of 4."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("medspacy", reason="RaTEScore's sentence splitter (medspacy/PyRuSH) is not installed")
RaTEScore = pytest.importorskip("RaTEScore", reason="the ratescore package (the parity target) is not installed")

from _radeval_doubles import CORPUS, build_mpnet, build_rate_ner  # noqa: E402

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.metrics.ratescore.scorer import RaTEScoreScorer  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "radeval"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("rate")
    return build_rate_ner(base / "ner", seed=3), build_mpnet(base / "emb", seed=5)


def _pairs() -> tuple[list[str], list[str]]:
    samples = json.loads((FIXTURES / "regression_samples.json").read_text())
    hyps = [*samples["hyps"], CORPUS[11], f"{CORPUS[13]} {CORPUS[14]}", "Heart normal.\n\nLungs clear.",
            CORPUS[15]]
    refs = [*samples["refs"], CORPUS[12], CORPUS[14], f"{CORPUS[3]}\n\n{CORPUS[0]}", CORPUS[15]]
    return hyps, refs


def test_equals_the_ratescore_package(tiny, affinity="long"):
    ner, emb = tiny
    hyps, refs = _pairs()
    upstream = RaTEScore.RaTEScore(bert_model=str(ner), eval_model=str(emb), use_gpu=False,
                                   affinity_matrix=affinity)
    expected = upstream.compute_score(hyps, refs)
    scorer = RaTEScoreScorer(affinity=affinity, ner_dir=str(ner), embed_dir=str(emb))
    got = scorer.score([f"s{i}" for i in range(len(hyps))], hyps, refs, ScoringContext(batch_size=4))
    assert len(expected) == len(hyps)
    assert got.stats["ratescore"].tolist() == pytest.approx(expected, abs=1e-6)
    assert got.values[f"ratescore[affinity={affinity}]"] == pytest.approx(sum(expected) / len(expected), abs=1e-6)
    assert got.stats["n_ref_entities"].min() > 0 and got.stats["n_hyp_entities"].min() > 0  # real matching ran


def test_tagging_equals_the_package_entity_by_entity(tiny):
    from RaTEScore.score import run_ner
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from rrg_bench.metrics.ratescore.model import RaTEModels, sentence_split

    ner, emb = tiny
    _, refs = _pairs()
    tok = AutoTokenizer.from_pretrained(str(ner))
    model = AutoModelForTokenClassification.from_pretrained(str(ner)).eval()
    expected = run_ner(refs, AutoConfig.from_pretrained(str(ner)).id2label, tok, model, "cpu", 1)
    ours = RaTEModels(ner, emb)
    got = []
    for text in refs:
        sentences = sentence_split(text)
        got.append([e for found in ours.tag(sentences, batch_size=3) for e in found])
    assert got == [list(map(tuple, e)) for e in expected]
    kinds = {k for ents in got for _, k in ents}
    assert len(kinds) >= 4, kinds  # the random tagger emits most entity types, so every branch is exercised


def test_affinity_tables_equal_the_package():
    from RaTEScore.scorer import DEFAULT_MATRIX_LONG, DEFAULT_MATRIX_SHORT

    from rrg_bench.metrics.ratescore.model import affinity

    for name, table in (("long", DEFAULT_MATRIX_LONG), ("short", DEFAULT_MATRIX_SHORT)):
        assert affinity(name) == {(k.split("_")[0].upper(), k.split("_")[1].upper()): v for k, v in table.items()}


def test_empty_report_scores_half_instead_of_shifting_later_pairs(tiny):
    """The package drops a report without a 3+ character sentence and pairs every later report
    with the wrong partner; we give the pair 0.5 (no entities) and keep the others in place."""
    ner, emb = tiny
    hyps, refs = _pairs()
    hyps2 = [hyps[0], "", *hyps[1:4]]
    refs2 = [refs[0], refs[1], *refs[1:4]]
    upstream = RaTEScore.RaTEScore(bert_model=str(ner), eval_model=str(emb), use_gpu=False)
    assert len(upstream.compute_score(hyps2, refs2)) == len(hyps2) - 1  # upstream's misalignment
    scorer = RaTEScoreScorer(ner_dir=str(ner), embed_dir=str(emb))
    got = scorer.score([f"s{i}" for i in range(5)], hyps2, refs2, ScoringContext()).stats["ratescore"].tolist()
    aligned = upstream.compute_score([hyps2[i] for i in (0, 2, 3, 4)], [refs2[i] for i in (0, 2, 3, 4)])
    assert got[1] == 0.5
    assert [got[i] for i in (0, 2, 3, 4)] == pytest.approx(aligned, abs=1e-6)


def test_second_scoring_tags_nothing_and_aggregate_recomputes(tiny, tmp_path):
    from rrg_bench.cache import AnnotationCache

    ner, emb = tiny
    hyps, refs = _pairs()
    ids = [f"s{i}" for i in range(len(hyps))]
    scorer = RaTEScoreScorer(ner_dir=str(ner), embed_dir=str(emb))
    cache = AnnotationCache(tmp_path / "cache.sqlite")
    first = scorer.score(ids, hyps, refs, ScoringContext(cache=cache))
    second = scorer.score(ids, hyps, refs, ScoringContext(cache=cache))
    assert first.cache_hits == 0 and second.cache_misses == 0 and second.cache_hits == first.cache_misses
    assert second.stats["ratescore"].tolist() == first.stats["ratescore"].tolist()
    sub = first.stats.iloc[[0, 2, 2, 5]]
    assert scorer.aggregate(sub)["ratescore[affinity=long]"] == pytest.approx(sub["ratescore"].mean())
    assert not math.isnan(first.values["ratescore[affinity=long]"])
