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

Bit-identity rests on row-wise kernels giving a row the same bits whatever the number of rows,
measured on the CPU here (tests/metrics/test_radgraph_parity.py checks it wherever it runs). On
other devices (CUDA picks kernels by shape) a report whose decisions are within
``near_tie_tolerance`` of flipping is annotated again by the package's own loop, alone.
``fast_path_reason`` says when a model uses parts this does not rebuild (coreference
propagation, a switched-off NER or relation task); the adapter then runs the package's loop.
"""

from __future__ import annotations

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


def fast_path_reason(model: Any) -> str | None:
    """Why the batched path cannot reproduce this model's annotations (None: it can)."""
    weights = model._loss_weights
    if not (weights["ner"] > 0 and weights["relation"] > 0):
        return "the model's NER or relation task is switched off (loss weight 0)"
    if model._coref.coref_prop > 0:
        return "the model propagates coreference into the span embeddings (coref_prop > 0)"
    return None


@dataclass
class _Report:
    """One text on its way through: its words, the package's instance and its sizes."""

    position: int
    words: list[str]
    instance: Any
    pieces: int  # sub-word ids the transformer sees, special tokens and windows included
    n_words: int


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

    def annotate(self, texts: Sequence[str], advance: Callable[[int], Any] | None = None) -> list[dict]:
        """One annotation per text, in order; texts must be non-blank for the package's preprocessing."""
        from radgraph.utils import preprocess_reports

        reports = []
        for position, doc in enumerate(preprocess_reports(list(texts), self.dataset)):
            instance = self.radgraph.reader.text_to_instance(doc)
            instance.index_fields(self.model.vocab)
            lengths = instance.get_padding_lengths()["text"]
            reports.append(_Report(position, doc["sentences"][0], instance,
                                   lengths["list_bert___token_ids"], lengths["list_bert___mask"]))
        results: list[dict | None] = [None] * len(reports)
        for batch in self.batches(reports):
            for report, annotation in zip(batch, self._annotate_batch(batch)):
                results[report.position] = annotation
            if advance:
                advance(len(batch))
        near_ties = [i for i, annotation in enumerate(results) if annotation is None]
        for i in near_ties:
            results[i] = self.radgraph([texts[i]])["0"]
        self.reannotated += len(near_ties)
        return results  # type: ignore[return-value]

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
        relation = self.model._relation
        mention = relation._mention_pruners[f"{self.dataset}__relation_labels"]._scorer(span_embeddings)
        mention = util.replace_masked_values(mention, span_mask.unsqueeze(-1).bool(), -1e20)
        keep = torch.ceil(lengths.float() * relation._spans_per_word).long().tolist()
        n_spans = span_mask.sum(dim=1).long().tolist()
        entities = [self._kept_entities(batch[i], mention[i, :n_spans[i]], keep[i], ner_labels[i])
                    for i in range(len(batch))]
        pair_labels, pair_margins = self._pair_labels(span_embeddings, mention, entities)
        margins = self._margins(ner_scores, span_mask, mention, n_spans, keep, pair_margins)
        return [None if margins[i] < self.near_tie_tolerance else
                self._annotation(report, spans[i, :n_spans[i]].tolist(), ner_labels[i], entities[i], pair_labels[i])
                for i, report in enumerate(batch)]

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
            i, j, k = (t[start:start + PAIR_CHUNK].to(mention.device) for t in (report, first, second))
            g1, g2 = span_embeddings[i, j], span_embeddings[i, k]
            scores = relation._relation_scorers[namespace](
                relation._relation_feedforwards[namespace](torch.cat([g1, g2, g1 * g2], dim=-1)))
            scores += mention[i, j] + mention[i, k]
            chunks.append(torch.cat([scores.new_zeros(scores.size(0), 1), scores], -1).detach().cpu())
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
