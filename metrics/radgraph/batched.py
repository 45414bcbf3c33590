"""Batched RadGraph inference through the package's own modules, with the package's annotations.

Why not the package's loop: ``radgraph.RadGraph`` runs one report per forward pass (its
``batch_size`` argument is never used and ``DyGIE.forward`` refuses more than one document), so
the transformer sees tiny matrices and the relation head scores and decodes, in Python, every
pair of kept spans. Here the same loaded modules (``radgraph.RadGraph(...).model``: its embedder,
span extractor, NER scorer, mention pruner and relation scorer, with the package's weights) run
on batches, and the package's decisions are rebuilt exactly:

* **No padding inside the transformer.** A batch only holds reports with the same number of
  sub-word ids (after the indexer's windowing), so the attention mask is all ones, as for a
  report alone, and a row's hidden states are bit for bit what the package computes (padded
  attention changes floats at ~1e-7 and, rarely, a decision). Words and spans are padded and
  masked; everything after the transformer is row-wise.
* **Per-report pruning and decoding.** The package's relation decoder limits only the *column*
  of a pair to the sentence's own top-k (``relation.py:154-158``), so a multi-sentence batch
  leaks relations from the pruner's fill rows; here each report keeps
  ``ceil(words * spans_per_word)`` spans by its own ``topk`` and only its own pairs are decoded.
* **Only pairs that can reach the annotation are scored.** ``postprocess_reports`` keeps a
  relation only if both of its spans are predicted entities, so the relation head runs on
  (kept entity) x (kept entity) pairs instead of all kept x kept pairs; each pair's scores are
  computed by the same layers, in the same order of operations.

Bit-identity rests on what the CPU's matrix kernels do with a row, measured here (MKL through torch,
tests/metrics/test_radgraph_parity.py checks it wherever it runs):

* a layer with several outputs gives a row the same bits whatever the number of rows around it,
  once there are enough rows (here from 12; below, small-matrix kernels sum in another order).
  :func:`row_stable_from` probes the model's own layers once per process for that number, and
  a report with fewer sub-words, candidate spans or kept-span pairs than it is annotated by the
  package's own loop, alone; every batched product has at least that many rows.
* a layer with one output (the mention scorer's last) is a matrix-vector product whose last
  ``rows mod 4`` rows are summed in another order: a row's bits depend on the number of rows.
  It runs per report, on that report's spans only, as the package runs it.

On other devices (CUDA picks kernels by shape) a report whose decisions are within
``near_tie_tolerance`` of flipping is annotated again by the package's own loop, alone.
``fast_path_reason`` says when a model uses parts this does not rebuild (coreference
propagation, a switched-off NER or relation task); the adapter then runs the package's loop.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: the most sub-word ids one forward pass may hold (bounds memory for long reports)
MAX_BATCH_PIECES = 8192
#: entity pairs per pass through the relation head (a pair row is 3 span vectors wide)
PAIR_CHUNK = 4096
#: decision margin (logit units) below which a report is re-annotated alone off the CPU
DEVICE_NEAR_TIE_TOLERANCE = 1e-3
#: row counts :func:`row_stable_from` tries (small-matrix kernels were seen up to 11 rows)
PROBE_ROWS = 32
#: distinct words whose sub-words a loaded model remembers (:func:`remember_word_pieces`)
WORD_PIECES_REMEMBERED = 100_000

_row_stable: dict[tuple[Any, ...], int] = {}  # (class, in, out, dtype, threads) -> fewest rows


def fast_path_reason(model: Any) -> str | None:
    """Why the batched path cannot reproduce this model's annotations (None: it can)."""
    weights = model._loss_weights
    if not (weights["ner"] > 0 and weights["relation"] > 0):
        return "the model's NER or relation task is switched off (loss weight 0)"
    if model._coref.coref_prop > 0:
        return "the model propagates coreference into the span embeddings (coref_prop > 0)"
    for pruner in model._relation._mention_pruners.values():
        if len(pruner._scorer) != 2 or getattr(pruner._scorer[-1]._module, "out_features", None) != 1:
            return "the model's mention scorer is not a feedforward followed by one linear output"
    return None


def row_stable_from(model: Any, device: Any) -> int:
    """The fewest rows from which each of ``model``'s linear layers with several outputs computes a
    row to the same bits whatever the number of rows around it (1 off the CPU: not claimed there).

    Probed on the layers themselves, once per shape and thread count: rows 1..``PROBE_ROWS`` alone
    and at an offset, against the same rows inside a larger product."""
    import torch

    if torch.device(device).type != "cpu":
        return 1
    fewest = 1
    for layer in model.modules():
        if isinstance(layer, torch.nn.Linear) and layer.out_features > 1:
            key = (type(layer), layer.in_features, layer.out_features, layer.weight.dtype, torch.get_num_threads())
            if key not in _row_stable:
                _row_stable[key] = _probe(layer)
            fewest = max(fewest, _row_stable[key])
    return fewest


def _probe(layer: Any) -> int:
    import torch

    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        x = torch.randn(3 * PROBE_ROWS, layer.in_features, generator=generator).to(layer.weight)
        whole = layer(x)
        unstable = [rows for rows in range(1, PROBE_ROWS + 1)
                    if not (torch.equal(layer(x[:rows]), whole[:rows])
                            and torch.equal(layer(x[rows:2 * rows]), whole[rows:2 * rows]))]
    return max(unstable, default=0) + 1


def remember_word_pieces(radgraph: Any) -> None:
    """Make the loaded model's reader split each distinct word into sub-words once.

    Why: the package's reader calls the tokenizer once per word of every report (17,000 calls for
    424 IU reports, ~1 s of a 33 s annotation). A word's sub-words depend only on the word, so the
    package's own per-word code runs once per distinct word and its result is put together as the
    package's loop does (offsets shifted by the sub-words before). Installed on this model's own
    tokenizer wrapper (one per reader; the Hugging Face tokenizer, shared between models, is untouched).
    """
    tokenizer = radgraph.reader._token_indexers["bert"]._allennlp_tokenizer
    if getattr(tokenizer, "_rrg_words_remembered", False):
        return
    package_code = tokenizer._intra_word_tokenize  # the class's method, bound before it is shadowed below
    one_word = functools.lru_cache(maxsize=WORD_PIECES_REMEMBERED)(lambda word: package_code([word]))

    def intra_word_tokenize(words: list[str]) -> tuple[list[Any], list[tuple[int, int] | None]]:
        tokens: list[Any] = []
        offsets: list[tuple[int, int] | None] = []
        for word in words:
            pieces, (offset,) = one_word(word)
            offsets.append(None if offset is None else (len(tokens) + offset[0], len(tokens) + offset[1]))
            tokens.extend(pieces)
        return tokens, offsets

    tokenizer._intra_word_tokenize = intra_word_tokenize
    tokenizer._rrg_words_remembered = True


@dataclass
class _Report:
    """One text on its way through: its words, the package's instance and its sizes."""

    position: int
    words: list[str]
    instance: Any
    pieces: int  # sub-word ids the transformer sees, special tokens and windows included
    n_words: int
    n_spans: int  # candidate spans


class BatchedAnnotator:
    """Annotates texts with a loaded ``radgraph.RadGraph``, batched, identical to ``RadGraph(texts)``."""

    def __init__(self, radgraph: Any, batch_size: int = 16, near_tie_tolerance: float | None = None) -> None:
        self.radgraph = radgraph
        self.model = radgraph.model
        self.dataset = radgraph.model_type  # the label namespaces' prefix, as the package's documents carry it
        self.batch_size = max(1, int(batch_size))
        if near_tie_tolerance is None:
            near_tie_tolerance = 0.0 if radgraph.device.type == "cpu" else DEVICE_NEAR_TIE_TOLERANCE
        self.near_tie_tolerance = near_tie_tolerance
        self.reannotated = 0  # reports handed to the package's loop because of a near tie
        self.min_rows = row_stable_from(self.model, radgraph.device)
        remember_word_pieces(radgraph)

    def annotate(self, texts: Sequence[str], advance: Callable[[int], Any] | None = None) -> list[dict]:
        """One annotation per text, in order; texts must be non-blank for the package's preprocessing."""
        from radgraph.utils import preprocess_reports

        reports: list[_Report] = []
        small: list[_Report] = []  # too few rows for the row-stable kernels: the package annotates them
        for position, doc in enumerate(preprocess_reports(list(texts), self.dataset)):
            instance = self.radgraph.reader.text_to_instance(doc)
            instance.index_fields(self.model.vocab)
            lengths = instance.get_padding_lengths()
            report = _Report(position, doc["sentences"][0], instance, lengths["text"]["list_bert___token_ids"],
                             lengths["text"]["list_bert___mask"], lengths["spans"]["list_num_fields"])
            (reports if self._row_stable(report) else small).append(report)
        results: list[dict | None] = [None] * (len(reports) + len(small))
        for batch in self.batches(reports):
            for report, annotation in zip(batch, self._annotate_batch(batch)):
                results[report.position] = annotation
            if advance:
                advance(len(batch))
        alone = [r.position for r in small]
        near_ties = sorted(set(i for i, annotation in enumerate(results) if annotation is None) - set(alone))
        for i in alone + near_ties:
            results[i] = self.radgraph([texts[i]])["0"]
        if advance and small:
            advance(len(small))
        self.reannotated += len(near_ties)
        return results  # type: ignore[return-value]

    def _row_stable(self, report: _Report) -> bool:
        """Whether every product the package computes for this report alone has at least ``min_rows``
        rows: its sub-words, its candidate spans (NER, mention features) and its kept-span pairs."""
        import torch

        (kept,) = self._spans_to_keep(torch.tensor([report.n_words]))
        return min(report.pieces, report.n_spans, kept * kept) >= self.min_rows

    def _spans_to_keep(self, n_words: Any) -> list[int]:
        """Spans the relation pruner keeps per report, from its word counts: ``ceil(words * spans_per_word)``
        in float32, as the package computes it."""
        import torch

        return torch.ceil(n_words.float() * self.model._relation._spans_per_word).long().tolist()

    def batches(self, reports: Sequence[_Report]) -> list[list[_Report]]:
        """Equal sub-word length per batch (no transformer padding), similar word counts together."""
        buckets: dict[int, list[_Report]] = defaultdict(list)
        for report in reports:
            buckets[report.pieces].append(report)
        batches: list[list[_Report]] = []
        for pieces in sorted(buckets):
            members = sorted(buckets[pieces], key=lambda r: (r.n_words, r.position))
            size = max(1, min(self.batch_size, MAX_BATCH_PIECES // max(pieces, 1)))
            batches.extend(members[start:start + size] for start in range(0, len(members), size))
        return batches

    def _annotate_batch(self, batch: Sequence[_Report]) -> list[dict | None]:
        """Annotations of one batch (None for a report with a near tie), as ``DyGIE.forward`` computes them."""
        import torch
        from radgraph.allennlp.data.batch import Batch
        from radgraph.allennlp.nn import util
        from radgraph.utils import batch_to_device

        tensors = batch_to_device(Batch([r.instance for r in batch]).as_tensor_dict(), self.radgraph.device)
        text = tensors["text"]
        embeddings = self.model._embedder(text, num_wrapping_dims=1)[:, 0]  # (batch, words, dim)
        lengths = util.get_text_field_mask(text, num_wrapping_dims=1)[:, 0].float().sum(dim=1).long()
        spans = tensors["spans"][:, 0]  # (batch, spans, 2); padding spans are (-1, -1)
        span_mask = (spans[:, :, 0] >= 0).float()
        spans = torch.nn.functional.relu(spans.float()).long()
        span_embeddings = self.model._endpoint_span_extractor(embeddings, spans)

        ner_scores = self.model._ner._ner_scorers[f"{self.dataset}__ner_labels"](span_embeddings)
        ner_scores = util.replace_masked_values(ner_scores, span_mask.unsqueeze(-1).bool(), -1e20)
        ner_scores = torch.cat((ner_scores.new_zeros(*ner_scores.shape[:2], 1), ner_scores), -1)
        ner_labels = ner_scores.detach().cpu().max(dim=2).indices  # 0 = no entity
        n_spans = span_mask.sum(dim=1).long().tolist()
        mention = self._mention_scores(span_embeddings, n_spans)
        mention = util.replace_masked_values(mention, span_mask.unsqueeze(-1).bool(), -1e20)
        keep = self._spans_to_keep(lengths)
        entities = [self._kept_entities(batch[i], mention[i, :n_spans[i]], keep[i], ner_labels[i])
                    for i in range(len(batch))]
        pair_labels, pair_margins = self._pair_labels(span_embeddings, mention, entities)
        margins = self._margins(ner_scores, span_mask, mention, n_spans, keep, pair_margins)
        return [None if margins[i] < self.near_tie_tolerance else
                self._annotation(report, spans[i, :n_spans[i]].tolist(), ner_labels[i], entities[i], pair_labels[i])
                for i, report in enumerate(batch)]

    def _mention_scores(self, span_embeddings: Any, n_spans: list[int]) -> Any:
        """The mention pruner's scores: its feedforward on the batch, its one-output layer per report on
        that report's spans only (a matrix-vector product: a row's bits depend on the number of rows)."""
        scorer = self.model._relation._mention_pruners[f"{self.dataset}__relation_labels"]._scorer
        features = scorer[0](span_embeddings)
        scores = features.new_zeros(*features.shape[:2], 1)
        for i, n in enumerate(n_spans):
            scores[i, :n] = scorer[1](features[i:i + 1, :n])[0]
        return scores

    def _kept_entities(self, report: _Report, mention: Any, keep: int, ner_labels: Any) -> Any:
        """Span indices, in text order, that the report's own pruner keeps and the NER labels an entity."""
        import torch

        if keep > len(mention):
            raise RuntimeError(
                f"radgraph cannot annotate {' '.join(report.words)[:80]!r}: it keeps ceil({report.n_words} words x "
                f"spans_per_word {self.model._relation._spans_per_word}) = {keep} of {len(mention)} candidate spans "
                f"(the package fails the same way: 'selected index k out of range')")
        _, top = mention.unsqueeze(0).topk(max(keep, 1), 1)  # the package's call on its (1, spans, 1) scores
        top = torch.sort(top.squeeze(-1), 1).values[0].cpu()
        return top[ner_labels[top] != 0]

    def _pair_labels(self, span_embeddings: Any, mention: Any, entities: list[Any]) -> tuple[list[Any], list[Any]]:
        """Per report, the relation label index (-1 = none) of each entity pair, row-major, and its margin.

        As ``RelationExtractor``: pair = [g1; g2; g1 * g2] -> feedforward -> scorer, plus the two
        mention scores added to every label, a zero null column first, argmax. Pairs go through in
        chunks of ``PAIR_CHUNK`` rows (a pair row is 3 span vectors wide).
        """
        import torch

        relation, namespace = self.model._relation, f"{self.dataset}__relation_labels"
        sizes = [len(kept) ** 2 for kept in entities]
        if not sum(sizes):
            empty = torch.zeros(0, dtype=torch.long)
            return [empty] * len(entities), [empty.float()] * len(entities)
        report = torch.cat([torch.full((size,), i, dtype=torch.long) for i, size in enumerate(sizes)])
        first = torch.cat([kept.repeat_interleave(len(kept)) for kept in entities])
        second = torch.cat([kept.repeat(len(kept)) for kept in entities])
        chunks = []
        for start in range(0, len(report), PAIR_CHUNK):
            rows = min(PAIR_CHUNK, len(report) - start)
            # at least min_rows rows per product, as the package's kept x kept pairs have: repeat the last pair
            take = torch.arange(start, start + max(rows, self.min_rows)).clamp(max=start + rows - 1)
            i, j, k = (t[take].to(mention.device) for t in (report, first, second))
            g1, g2 = span_embeddings[i, j], span_embeddings[i, k]
            scores = relation._relation_scorers[namespace](
                relation._relation_feedforwards[namespace](torch.cat([g1, g2, g1 * g2], dim=-1)))
            scores += mention[i, j] + mention[i, k]
            chunks.append(torch.cat([scores.new_zeros(scores.size(0), 1), scores], -1)[:rows].detach().cpu())
        scores = torch.cat(chunks)
        labels = (scores.max(dim=-1).indices - 1).split(sizes)
        top2 = scores.topk(2, dim=-1).values
        return list(labels), list((top2[:, 0] - top2[:, 1]).split(sizes))

    def _margins(self, ner_scores: Any, span_mask: Any, mention: Any, n_spans: list[int], keep: list[int],
                 pair_margins: list[Any]) -> list[float]:
        """Per report, the smallest gap between a decision and its runner-up (inf when not checked)."""
        if self.near_tie_tolerance <= 0:
            return [float("inf")] * len(n_spans)
        top2 = ner_scores.topk(2, dim=-1).values
        ner = (top2[..., 0] - top2[..., 1]).masked_fill(span_mask == 0, float("inf")).min(dim=1).values.tolist()
        margins = []
        for i, (n, k) in enumerate(zip(n_spans, keep)):
            gaps = [ner[i]]
            if k < n:  # which spans the pruner keeps
                ranked = mention[i, :n, 0].sort(descending=True).values
                gaps.append(float(ranked[k - 1] - ranked[k]))
            if len(pair_margins[i]):
                gaps.append(float(pair_margins[i].min()))
            margins.append(min(gaps))
        return margins

    def _annotation(self, report: _Report, spans: list[list[int]], ner_labels: Any, entities: Any,
                    pair_labels: Any) -> dict:
        """``postprocess_reports``' output for one report, from its decisions (the package's ``get_entity``)."""
        from radgraph.utils import get_entity

        vocab = self.model.vocab
        ner = [[*spans[s], vocab.get_token_from_index(int(label), f"{self.dataset}__ner_labels")]
               for s, label in enumerate(ner_labels[:len(spans)].tolist()) if label != 0]
        entities, count = entities.tolist(), len(entities)
        relations = [[*spans[entities[index // count]], *spans[entities[index % count]],
                      vocab.get_token_from_index(label, f"{self.dataset}__relation_labels")]
                     for index, label in enumerate(pair_labels.tolist()) if label >= 0]
        return {"text": " ".join(report.words), "entities": get_entity(ner, relations, report.words),
                "data_source": None, "data_split": "inference"}
