"""Joining predictions to a split's studies: by study id, never by line position."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rrg_bench.api.types import Study
from rrg_bench.errors import PredictionsError
from rrg_bench.predictions.external import ExternalPrediction

_LIST_LIMIT = 20


def _listing(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_LIST_LIMIT])
    more = f" … and {len(ids) - _LIST_LIMIT} more" if len(ids) > _LIST_LIMIT else ""
    return f"{len(ids)}: {shown}{more}"


@dataclass
class Alignment:
    """Hypotheses joined to studies by id (never by line position)."""

    studies: list[Study]
    hypotheses: list[str]
    missing: list[str]
    extra: list[str]
    n_null: int = 0  # kept predictions given as null / NaN (scored as empty)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.extra


def align(predictions: Sequence[ExternalPrediction], studies: Sequence[Study], *, source: str,
          allow_partial: bool = False) -> Alignment:
    """Join predictions to the split's studies; duplicates are always an error."""
    seen: dict[str, int] = {}
    dups: list[str] = []
    for p in predictions:
        if p.study_id in seen and not any(d.startswith(f"{p.study_id} ") for d in dups):
            dups.append(f"{p.study_id} (lines {seen[p.study_id]} and {p.line})")
        seen.setdefault(p.study_id, p.line)
    if dups:
        raise PredictionsError(f"{source}: duplicate study ids ({_listing(dups)}); keep one prediction per study")
    by_id = {p.study_id: p for p in predictions}
    wanted = {s.study_id for s in studies}
    missing = [s.study_id for s in studies if s.study_id not in by_id]
    extra = [p.study_id for p in predictions if p.study_id not in wanted]
    if (missing or extra) and not allow_partial:
        parts = []
        if missing:
            parts.append(f"missing predictions for {_listing(missing)}")
        if extra:
            parts.append(f"ids not in the split ({_listing(extra)})")
        raise PredictionsError(
            f"{source}: {'; '.join(parts)}. Check --dataset/--split, or pass --allow-partial "
            "to score the overlap (the record is then marked ineligible)"
        )
    kept = [s for s in studies if s.study_id in by_id]
    if not kept:
        raise PredictionsError(f"{source}: no prediction matches a study of the split")
    return Alignment(kept, [by_id[s.study_id].report for s in kept], missing, extra,
                     n_null=sum(by_id[s.study_id].null for s in kept))
