"""Batched annotation (metrics/radgraph/batched.py) against the radgraph package itself.

For each of the three model types, a random model of the real classes (``_radgraph_doubles``;
a ModernBERT backbone for ``modern-radgraph-xl``) annotates 200+ IU X-Ray reports and edge cases
through ``radgraph.RadGraph(texts)`` (one report per forward pass) and through our batches;
every annotation must be identical (entities, labels, relations, their order), and every
report's span representations equal to the package's bit for bit. The models use
a short ``max_length`` so that about half of the reports are cut into windows, as the real
models cut reports longer than 512 sub-words.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

import pytest

pytest.importorskip("radgraph")

from _radgraph_doubles import build_tiny_radgraph_model, package_layout  # noqa: E402

from rrg_bench.metrics.radgraph.adapter import RadGraphAnnotator, locate_model  # noqa: E402
from rrg_bench.metrics.radgraph.batched import BatchedAnnotator, fast_path_reason  # noqa: E402

MODEL_TYPES = ("radgraph", "radgraph-xl", "modern-radgraph-xl")
N_REPORTS = 210
MAX_LENGTH = 64  # sub-words per window: IU reports have a median of ~55

EDGE_CASES = [
    "Heart size normal /. Lungs clear /? No effusion",  # XL: "/." and "/?" words, normalised by the reader
    "Lungs \u200b clear .",  # a word with no sub-word (zero-width space): a zero vector
    "ET tube 2.5 cm above the carina (stable). Bibasilar atelectasis, left > right; see CT 03/14.",
    "No effusion.",
    "NO ACUTE CARDIOPULMONARY ABNORMALITY. Mild Cardiomegaly.",
    "Heart size is normal.\nLungs are clear.\\nNo pneumothorax.",
]


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "bench-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def report_texts(iu_source: Path) -> list[str]:
    split = json.loads((iu_source / "annotation.json").read_text(encoding="utf-8"))
    reports = list(dict.fromkeys(s["report"] for part in ("test", "train") for s in split[part]))
    random.Random(14).shuffle(reports)
    chosen = reports[:N_REPORTS]
    long_report = " ".join(sorted(reports, key=len)[-3:])  # several windows
    return [*chosen, *EDGE_CASES, long_report, chosen[0]]  # a text twice: two rows of one batch


def _package(model_dir: Path, model_type: str, root: Path):
    from radgraph import RadGraph

    with contextlib.redirect_stdout(io.StringIO()):
        return RadGraph(model_type=model_type, model_cache_dir=str(package_layout(model_dir, model_type, root)))


@pytest.mark.slow
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_batched_annotations_equal_the_package(model_type, report_texts, tmp_path, monkeypatch):
    import torch

    model_dir = build_tiny_radgraph_model(tmp_path / "model", model_type, seed=3, relation_rate=0.05,
                                          max_length=MAX_LENGTH)
    package = _package(model_dir, model_type, tmp_path / "package")
    their_spans: list = []  # span representations, one (1, spans, dim) tensor per report
    package.model._endpoint_span_extractor.register_forward_hook(lambda _m, _a, out: their_spans.append(out))
    their_mentions: list = []  # mention scores, one (1, spans, 1) tensor per report
    (pruner,) = package.model._relation._mention_pruners.values()
    pruner._scorer.register_forward_hook(lambda _m, _a, out: their_mentions.append(out))
    with torch.inference_mode():
        theirs = package(report_texts)
    theirs = [theirs[str(i)] for i in range(len(report_texts))]
    entities = sum(len(a["entities"]) for a in theirs)
    relations = sum(len(e["relations"]) for a in theirs for e in a["entities"].values())
    assert entities >= 1000 and relations >= 200, (entities, relations)  # the comparison is not vacuous
    assert len({json.dumps(a["entities"], sort_keys=True) for a in theirs}) > 0.9 * len(set(report_texts))

    annotator = RadGraphAnnotator(locate_model(model_type, model_dir))
    assert fast_path_reason(annotator.load().model) is None
    batches: list[list[int]] = []  # text positions of each forward pass
    spy = BatchedAnnotator._annotate_batch
    monkeypatch.setattr(BatchedAnnotator, "_annotate_batch",
                        lambda self, batch: batches.append([r.position for r in batch]) or spy(self, batch))
    our_spans: list = []
    annotator.load().model._endpoint_span_extractor.register_forward_hook(lambda _m, _a, out: our_spans.append(out))
    our_mentions: list = []  # the one-output layer's scores, per report: batched reports first, then alone ones
    (pruner,) = annotator.load().model._relation._mention_pruners.values()
    pruner._scorer[-1].register_forward_hook(lambda _m, _a, out: our_mentions.append(out))
    for batch_size in (16, 5):  # two batch compositions
        batches.clear()
        our_spans.clear()
        our_mentions.clear()
        ours = annotator.annotate(report_texts, batch_size=batch_size)
        mismatches = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
        assert not mismatches, f"batch size {batch_size}: {len(mismatches)} differ, first: {mismatches[0]}"
        batched = [p for batch in batches for p in batch]
        alone = [i for i in range(len(report_texts)) if i not in set(batched)]  # too short for row-stable kernels
        assert sorted(batched) == sorted(set(batched)) and len(alone) <= 3
        assert all(len(report_texts[i].split()) < 12 for i in alone), [report_texts[i] for i in alone]
        assert max(map(len, batches)) <= batch_size and len(batches) < len(report_texts) / 2  # batched for real
        # not only the decisions: every report's span vectors and mention scores are the package's, bit for bit
        for positions, spans in zip(batches, our_spans):
            for row, position in enumerate(positions):
                theirs_row = their_spans[position][0]
                assert torch.equal(spans[row, :len(theirs_row)], theirs_row), report_texts[position][:80]
        assert len(our_mentions) == len(report_texts)
        for position, mention in zip(batched + alone, our_mentions):
            assert torch.equal(mention, their_mentions[position]), report_texts[position][:80]


@pytest.mark.filterwarnings("ignore:Document .* has a sentence with a single token")
def test_a_report_the_package_cannot_annotate_fails_the_same_way(tmp_path):
    """One word with spans_per_word 1.5 asks the pruner for 2 of 1 candidate spans: radgraph raises."""
    model_dir = build_tiny_radgraph_model(tmp_path / "model", "radgraph-xl")
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        _package(model_dir, "radgraph-xl", tmp_path / "package")(["Unremarkable"])
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        RadGraphAnnotator(locate_model("radgraph-xl", model_dir)).annotate(["Normal chest.", "Unremarkable"])


def test_models_the_batches_cannot_reproduce_run_the_package_loop(tmp_path):
    from types import SimpleNamespace

    def model(ner=1.0, relation=1.0, coref_prop=0, mention_outputs=1):
        scorer = [SimpleNamespace(_module=None), SimpleNamespace(_module=SimpleNamespace(out_features=mention_outputs))]
        return SimpleNamespace(_loss_weights={"ner": ner, "relation": relation},
                               _coref=SimpleNamespace(coref_prop=coref_prop),
                               _relation=SimpleNamespace(_mention_pruners={"x": SimpleNamespace(_scorer=scorer)}))

    assert fast_path_reason(model()) is None
    assert "coref_prop" in fast_path_reason(model(coref_prop=1))
    assert "switched off" in fast_path_reason(model(relation=0.0))
    assert "mention scorer" in fast_path_reason(model(mention_outputs=2))

    model_dir = build_tiny_radgraph_model(tmp_path / "model", "radgraph-xl")
    texts = ["Mild cardiomegaly with left pleural effusion.", "Heart size is normal. Lungs are clear."]
    batched = RadGraphAnnotator(locate_model("radgraph-xl", model_dir)).annotate(texts)
    loop = RadGraphAnnotator(locate_model("radgraph-xl", model_dir), batched=False).annotate(texts)
    assert batched == loop


def test_reports_near_a_tie_are_annotated_again_by_the_package_loop(tmp_path, report_texts):
    """Off the CPU a row's floats may depend on the batch; decisions closer than the tolerance go to the package."""
    import torch

    model_dir = build_tiny_radgraph_model(tmp_path / "model", "radgraph-xl", relation_rate=0.05)
    radgraph = RadGraphAnnotator(locate_model("radgraph-xl", model_dir)).load()
    texts = report_texts[:40]
    assert BatchedAnnotator(radgraph).near_tie_tolerance == 0.0  # on the CPU the rows are bit-identical
    with torch.inference_mode():
        exact = BatchedAnnotator(radgraph).annotate(texts)
        # this tiny model's logits are small: its reports' closest decisions are 2e-5 to 5e-3 apart
        for tolerance, expected in ((5e-4, "some"), (1e9, "all")):
            guarded = BatchedAnnotator(radgraph, near_tie_tolerance=tolerance)
            assert guarded.annotate(texts) == exact
            reannotated = guarded.reannotated
            assert (0 < reannotated < len(texts)) if expected == "some" else reannotated == len(texts)


def test_the_probe_finds_the_row_count_from_which_rows_keep_their_bits():
    """A layer whose rows change below 7 rows (as small-matrix kernels sum in another order) gives 7;
    one-output layers are not probed (they run per report); off the CPU nothing is claimed."""
    import torch

    from rrg_bench.metrics.radgraph.batched import row_stable_from

    class ExactLinear(torch.nn.Linear):  # a product without rounding: any row count gives the same bits
        below = 0

        def forward(self, x):
            out = x[:, :self.out_features] * 2
            return out + 1e-3 if len(x) < self.below else out

    class SmallMatrixKernel(ExactLinear):
        below = 7

    model = torch.nn.Sequential(ExactLinear(8, 4), SmallMatrixKernel(4, 3), SmallMatrixKernel(3, 1))
    assert row_stable_from(model, "cpu") == 7
    assert row_stable_from(torch.nn.Sequential(ExactLinear(8, 4), SmallMatrixKernel(3, 1)), "cpu") == 1
    assert row_stable_from(model, "cuda") == 1


def test_remembered_word_pieces_are_the_packages(tmp_path):
    """Each distinct word is split once; the tokens and offsets put together are what the package's loop gives,
    a word without sub-words (a zero-width space) included."""
    from rrg_bench.metrics.radgraph.batched import remember_word_pieces

    model_dir = build_tiny_radgraph_model(tmp_path / "model", "radgraph-xl")
    radgraph = RadGraphAnnotator(locate_model("radgraph-xl", model_dir)).load()
    tokenizer = radgraph.reader._token_indexers["bert"]._allennlp_tokenizer
    words = "No pneumothorax \u200b or pleural effusion ; no pneumothorax . Cardiomegaly".split(" ")
    expected = type(tokenizer)._intra_word_tokenize(tokenizer, words)
    calls = []
    package_code = tokenizer._intra_word_tokenize
    tokenizer._intra_word_tokenize = lambda ws: calls.append(ws) or package_code(ws)
    remember_word_pieces(radgraph)
    remember_word_pieces(radgraph)  # once only
    for _ in range(2):
        tokens, offsets = tokenizer.intra_word_tokenize(words)
        start = len(tokenizer.single_sequence_start_tokens)
        assert offsets == [None if o is None else (o[0] + start, o[1] + start) for o in expected[1]]
        pieces = [(t.text, t.text_id) for t in tokens[start:len(tokens) - 1]]
        assert pieces == [(t.text, t.text_id) for t in expected[0]]
    assert sorted(w for (w,) in calls) == sorted(set(words))  # one call per distinct word, over both passes
    assert None in expected[1]
