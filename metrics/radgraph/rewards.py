"""RadGraph F1 scores of one (hypothesis, reference) pair, computed from two annotations.

Why our own code and not the package's: the harness annotates each distinct text once and keeps
the annotations in the cache; every level (and every bootstrap resample) is then recomputed from
them without the model. The definitions follow, operation for operation (so the floats are
bitwise equal, shown by tests/metrics/test_radgraph_rewards.py):

* Delbrouck et al. 2022 levels, ``radgraph`` 0.1.18 ``rewards.py`` / ``F1RadGraph``: per report a
  *set* of items for each side, P = |H∩R|/|H|, R = |H∩R|/|R|, F1 = 2PR/(P+R); 0 when either
  annotation has no entity.

  - ``simple`` (RG_E): ``(tokens, label)`` for every entity;
  - ``partial`` (RG_ER): ``(tokens, label)`` for entities without relations,
    ``(tokens, label, True)`` for entities with at least one;
  - ``complete`` (RG_bar_ER): ``(tokens, label)`` for entities without relations, and for each
    relation ``(tokens.lower(), label, relation, target_tokens.lower())``.

  Tokens are compared case-sensitively except in relation items, exactly as 0.1.18 does.

* RadCliQ / ReXrank "RadGraph" (Yu et al. 2023; rajpurkarlab/CXR-Report-Metric
  ``radgraph_evaluate_model.py``): entity set ``{(tokens, label)}``, relation set
  ``{((tokens, label), (target_tokens, target_label), relation)}``, the same set F1 for each (an
  empty pair of sets scores 0, no zero-entity gate), and ``er_mean = (entity_f1 + relation_f1)/2``.

An annotation is one value of the package's output dict:
``{"entities": {"<id>": {"tokens", "label", "relations": [[relation, "<target id>"], ...]}}}``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

Annotation = Mapping[str, Any]

#: the Delbrouck reward levels, in the order F1RadGraph(reward_level="all") returns them
LEVELS: tuple[str, ...] = ("simple", "partial", "complete")


@dataclass(frozen=True)
class PairScores:
    """Every RadGraph number of one report pair; the per-study statistics of the scorer."""

    simple: float
    partial: float
    complete: float
    entity_f1: float
    relation_f1: float
    er_mean: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: the score of a pair whose hypothesis or reference is empty (F1RadGraph gives every level 0)
EMPTY_PAIR = PairScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def set_f1(hypothesis: set[Hashable], reference: set[Hashable]) -> float:
    """F1 of two item sets, in the package's order of operations (bitwise parity matters)."""
    overlap = sum(1 for item in hypothesis if item in reference)
    precision = overlap / len(hypothesis) if hypothesis else 0.0
    recall = overlap / len(reference) if reference else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _entities(annotation: Annotation) -> Mapping[str, Mapping[str, Any]]:
    return annotation["entities"]


def simple_items(annotation: Annotation) -> set[Hashable]:
    return {(e["tokens"], e["label"]) for e in _entities(annotation).values()}


def partial_items(annotation: Annotation) -> set[Hashable]:
    return {(e["tokens"], e["label"], True) if e["relations"] else (e["tokens"], e["label"])
            for e in _entities(annotation).values()}


def complete_items(annotation: Annotation) -> set[Hashable]:
    entities = _entities(annotation)
    items: set[Hashable] = set()
    for entity in entities.values():
        if not entity["relations"]:
            items.add((entity["tokens"], entity["label"]))
        for relation, target in entity["relations"]:
            items.add((entity["tokens"].lower(), entity["label"], relation,
                       entities[target]["tokens"].lower()))
    return items


def radcliq_relation_items(annotation: Annotation) -> set[Hashable]:
    entities = _entities(annotation)
    return {((e["tokens"], e["label"]), (entities[target]["tokens"], entities[target]["label"]), relation)
            for e in entities.values() for relation, target in e["relations"]}


def delbrouck_rewards(hypothesis: Annotation, reference: Annotation) -> tuple[float, float, float]:
    """(simple, partial, complete), as ``radgraph.rewards.compute_reward(..., "all")``."""
    if not _entities(hypothesis) or not _entities(reference):
        return 0.0, 0.0, 0.0
    return (set_f1(simple_items(hypothesis), simple_items(reference)),
            set_f1(partial_items(hypothesis), partial_items(reference)),
            set_f1(complete_items(hypothesis), complete_items(reference)))


def radcliq_entity_relation_f1(hypothesis: Annotation, reference: Annotation) -> tuple[float, float]:
    """(entity F1, relation F1) as CXR-Report-Metric's ``evaluate_radgraph`` computes them."""
    return (set_f1(simple_items(hypothesis), simple_items(reference)),
            set_f1(radcliq_relation_items(hypothesis), radcliq_relation_items(reference)))


def score_pair(hypothesis: Annotation, reference: Annotation) -> PairScores:
    simple, partial, complete = delbrouck_rewards(hypothesis, reference)
    entity_f1, relation_f1 = radcliq_entity_relation_f1(hypothesis, reference)
    return PairScores(simple, partial, complete, entity_f1, relation_f1, (entity_f1 + relation_f1) / 2)
