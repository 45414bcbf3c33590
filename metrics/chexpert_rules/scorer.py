"""The ``chexpert_rules`` scorer: CheXpert-label F1 of hypotheses against references, both labelled
by the offline rule labeler (``labeler.py``); the F1 arithmetic is shared with CheXbert's."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, RowsAggregate, Scorer, ScoreResult, ScoringContext
from rrg_bench.hashing import sha256_bytes
from rrg_bench.metrics.chexpert_rules import labeler, phrases
from rrg_bench.metrics.chexpert_rules.labeler import LABELER_VERSION, label_reports
from rrg_bench.metrics.common import label_f1

if TYPE_CHECKING:
    import pandas as pd


class CheXpertRulesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uncertain: Literal["positive", "negative", "exclude"] = "positive"


class CheXpertRulesScorer(Scorer):
    """F1 over the 14 (and the CheXpert 5) labels from the offline rule labeler.

    Column ids carry the ``chexpert_rules_f1`` prefix, the label set, the average and the
    uncertainty policy; they can never collide with ``chexbert_f1[...]``.
    """

    name = "chexpert_rules"
    version = "1"
    Params = CheXpertRulesParams
    params: CheXpertRulesParams
    PREFIX = "chexpert_rules_f1"

    def columns(self) -> list[Column]:
        policy = self.params.uncertain
        return label_f1.f1_columns(
            self.PREFIX, policy,
            display=lambda labels, avg: f"Rules F1-{labels} {avg}",
            convention=lambda labels, avg: (f"offline rule labeler (not CheXbert), {labels} labels, {avg} F1, "
                                            f"uncertain={policy}, zero_division=0"))

    def impl(self) -> dict[str, Any]:
        """The labeler version plus a hash of its rules and phrases, so any edit shows in records."""
        rules = b"".join(Path(inspect.getfile(module)).read_bytes() for module in (labeler, phrases))
        return {"labeler": "metrics.chexpert_rules", "labeler_version": LABELER_VERSION,
                "rules_sha256": sha256_bytes(rules)}

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        n = len(study_ids)
        if not (n == len(hyps) == len(refs)):
            raise ValueError(f"{n} study ids, {len(hyps)} hypotheses, {len(refs)} references")
        advance = ctx.progress("chexpert_rules", 2 * n) if ctx.progress else None
        codes = label_reports([*refs, *hyps])  # one pass: texts shared by both sides are labelled once
        if advance:
            advance(2 * n)
        ref_codes, hyp_codes = codes[:n], codes[n:]
        stats = label_f1.codes_frame(study_ids, ref_codes, hyp_codes)
        return ScoreResult(
            values=self.aggregate(stats),
            stats=stats,
            per_label=label_f1.per_label_values(ref_codes, hyp_codes, self.params.uncertain),
            notes=["labels are recomputed, not cached: the rule labeler is faster than a cache lookup"],
        )

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        return label_f1.label_samples(stats, self.spec, self.params.uncertain)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        ref_codes, hyp_codes = label_f1.codes_from_frame(stats)
        return label_f1.summary_values(ref_codes, hyp_codes, self.params.uncertain, self.PREFIX)

    def rows_aggregate(self, stats: pd.DataFrame) -> RowsAggregate:
        ref_codes, hyp_codes = label_f1.codes_from_frame(stats)
        return label_f1.rows_summary(ref_codes, hyp_codes, self.params.uncertain, self.PREFIX)
