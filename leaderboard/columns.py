"""How columns are named and ordered in every table: short names a reader knows, in the order papers use.

Metric ids are exact but long (``chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]``); a
table heads its columns with each metric's short display name and keeps the id in a tooltip
and the metrics list. Two conventions of one quantity share a display name ("BLEU-1" under
PTB and under R2Gen's tokeniser), so where names collide the header adds the parameters
that tell them apart. Ad-hoc tables put the lexical metrics first in the order every report
generation paper prints them (BLEU-1..4, METEOR, ROUGE-L, CIDEr), then the clinical ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rrg_bench.records import LoadedRecord
from rrg_bench.records.columns import metric_family

#: lexical metrics in the order papers print them (ReXrank's per-report BLEU-2 sits with BLEU-2)
NLG_ORDER = {"bleu1": 0, "bleu2": 1, "bleu2_rexrank": 1, "bleu3": 2, "bleu4": 3, "meteor": 4, "rouge_l": 5,
             "cider_d": 6, "cider": 6}
#: the other scorers, text similarity first, then label-, embedding- and graph-based, then composites
SCORER_ORDER = ("bertscore", "chexpert_rules", "chexbert", "sembscore", "radgraph", "radcliq_v1")


def spec_params(metric_id: str) -> dict[str, str]:
    """``bleu1[tok=ptb]`` -> ``{"tok": "ptb"}`` (no brackets: no parameters)."""
    from rrg_bench.specs import parse_spec

    try:
        return parse_spec(metric_id)[1]
    except Exception:  # an id a plugin made up; it is still a column, just without parameters
        return {}


def distinguishing_suffix(metric_id: str, others: Sequence[str]) -> str:
    """The parameters of ``metric_id`` that differ among ``others`` (``tok=ptb``), else the id itself."""
    mine = spec_params(metric_id)
    params = [spec_params(o) for o in others]
    keys = [k for k in dict.fromkeys(k for p in [mine, *params] for k in p)
            if len({p.get(k) for p in [mine, *params]}) > 1 and k in mine]
    return ", ".join(f"{k}={mine[k]}" for k in keys) or metric_id


def disambiguate(columns: list[Any]) -> list[Any]:
    """Columns (dataclasses with ``id`` and ``display``) whose shared display names name their convention."""
    out = []
    for col in columns:
        clash = [c.id for c in columns if c.display == col.display and c.id != col.id]
        out.append(replace(col, display=f"{col.display} ({distinguishing_suffix(col.id, clash)})") if clash else col)
    return out


def _scorer_columns(spec: str, cache: dict[str, list[str]]) -> list[str]:
    """Column ids in the order the registered scorer declares them ([] when it cannot be built here)."""
    if spec not in cache:
        from rrg_bench.specs import build_scorer

        try:
            cache[spec] = [c.id for c in build_scorer(spec).columns()]
        except Exception:  # unregistered plugin, missing extra: fall back to the records' order
            cache[spec] = []
    return cache[spec]


def conventional_order(metric_ids: Sequence[str], records: Sequence[LoadedRecord]) -> list[str]:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr (one block per convention, first-seen first), then the rest
    grouped by scorer in :data:`SCORER_ORDER` and each scorer's own column order."""
    # without a record, an id's convention (its parameters) stands in for the scorer that made it
    scorer_of = {mid: mid.partition("[")[2] or mid for mid in metric_ids}
    scorer_of.update({mid: lr.record.metrics[mid].scorer for lr in records for mid in lr.record.metrics})
    seen_scorers = list(dict.fromkeys(scorer_of[m] for m in metric_ids))
    cache: dict[str, list[str]] = {}

    def key(item: tuple[int, str]) -> tuple:
        position, mid = item
        scorer = scorer_of[mid]
        family = metric_family(mid)
        if family in NLG_ORDER:
            return (0, seen_scorers.index(scorer), NLG_ORDER[family], position)
        name = metric_family(scorer)
        rank = SCORER_ORDER.index(name) if name in SCORER_ORDER else len(SCORER_ORDER)
        declared = _scorer_columns(scorer, cache)
        within = declared.index(mid) if mid in declared else len(declared) + position
        return (1, rank, name if rank == len(SCORER_ORDER) else "", seen_scorers.index(scorer), within)

    return [mid for _, mid in sorted(enumerate(metric_ids), key=key)]


def registered_column(metric_id: str) -> Any | None:
    """The :class:`rrg_bench.api.Column` a registered scorer declares for ``metric_id``, if any.

    A board lists the columns it promises; until a record carries one, its header still
    deserves the metric's display name and convention rather than the raw id.
    """
    from rrg_bench.registry import registry

    suites = registry("suites")
    specs = [metric_family(metric_id)]
    for name in suites.names():
        try:
            specs += list(suites.get(name).specs)
        except Exception:  # a broken plugin suite must not break a board
            continue
    specs += registry("metrics").names()
    cache: dict[str, list[str]] = {}
    for spec in dict.fromkeys(specs):
        if metric_id in _scorer_columns(spec, cache):
            from rrg_bench.specs import build_scorer

            return next(c for c in build_scorer(spec).columns() if c.id == metric_id)
    return None
