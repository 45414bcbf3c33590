"""The ``radgraph`` scorer: RadGraph F1 at the three Delbrouck levels and the RadCliQ entity/relation
mean, per report, from the adapter's annotations (``adapter.py``) and our levels (``rewards.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.errors import PredictionsError, WeightsUnavailable
from rrg_bench.metrics.radgraph.adapter import (
    ADAPTER_VERSION,
    RadGraphAnnotator,
    RadGraphModel,
    locate_model,
    radgraph_version,
)
from rrg_bench.metrics.radgraph.rewards import EMPTY_PAIR, LEVELS, PairScores, score_pair

if TYPE_CHECKING:
    import pandas as pd

LEVEL_NAMES = {"simple": "RG_E", "partial": "RG_ER", "complete": "RG_bar_ER"}
LEVEL_DEFINITIONS = {
    "simple": "entities (tokens, label)",
    "partial": "entities (tokens, label, has-relation)",
    "complete": "entities without relations + (tokens, label, relation, target tokens)",
}
STAT_COLUMNS: tuple[str, ...] = (*LEVELS, "entity_f1", "relation_f1", "er_mean")


class RadGraphParams(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: Literal["radgraph", "radgraph-xl", "modern-radgraph-xl"] = "radgraph-xl"
    #: a local model directory (config.json, vocabulary/, weights.th); where the weights live is
    #: not a convention, so it is left out of the spec and the column ids
    model_dir: str | None = None


def level_column_id(model: str, level: str) -> str:
    return f"radgraph_f1[model={model},level={level}]"


def er_mean_column_id(model: str) -> str:
    return f"radgraph_er_mean[model={model}]"


class RadGraphScorer(Scorer):
    """RadGraph F1 at the three Delbrouck levels plus the RadCliQ/ReXrank entity-relation mean."""

    name = "radgraph"
    version = "1"
    Params = RadGraphParams
    params: RadGraphParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._located: RadGraphModel | None = None
        self._annotators: dict[str, RadGraphAnnotator] = {}

    @property
    def spec(self) -> str:
        return f"{self.name}[model={self.params.model}]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {"model": self.params.model},
                "impl": self.impl()}

    def columns(self) -> list[Column]:
        model = self.params.model
        upstream = f"radgraph {radgraph_version() or '?'}"
        cols = [
            Column(id=level_column_id(model, level), display=f"RadGraph F1 {level} ({LEVEL_NAMES[level]})",
                   convention=(f"{model} annotations ({upstream}); per-report set F1 over "
                               f"{LEVEL_DEFINITIONS[level]}, case-sensitive as in 0.1.18; 0 if either report "
                               f"is empty or has no entity; mean over reports (F1RadGraph reward_level={level!r})"))
            for level in LEVELS
        ]
        cols.append(Column(
            id=er_mean_column_id(model), display="RadGraph (ER mean)",
            convention=(f"{model} annotations ({upstream}); per-report (entity F1 + relation F1)/2, entities "
                        f"(tokens, label), relations ((tokens, label), (tokens, label), type); 0 if either report "
                        f"is empty; mean over reports (CXR-Report-Metric radgraph_combined; RadCliQ/ReXrank use "
                        f"model=radgraph)")))
        return cols

    def _locate(self) -> RadGraphModel:
        if self._located is None:
            self._located = locate_model(self.params.model, self.params.model_dir)
        return self._located

    def unavailable_reason(self) -> str | None:
        if radgraph_version() is None:
            return "the radgraph package is not installed: pip install 'rrg-bench[clinical]' (radgraph==0.1.18)"
        try:
            self._locate()
        except WeightsUnavailable as exc:
            return str(exc)
        return None

    def impl(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"radgraph": radgraph_version(), "model_type": self.params.model,
                                 "adapter_version": ADAPTER_VERSION}
        try:
            model = self._locate()
        except WeightsUnavailable:
            return {**facts, "weights": "unavailable"}
        return {**facts, "weights_sha256": model.weights_sha256(), "backbone": model.backbone_name,
                "backbone_files_sha256": model.backbone_sha256()}

    def annotator(self, device: str = "cpu") -> RadGraphAnnotator:
        if device not in self._annotators:
            self._annotators[device] = RadGraphAnnotator(self._locate(), device)
        return self._annotators[device]

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        if not len(study_ids) == len(hyps) == len(refs):
            raise ValueError(f"radgraph: {len(study_ids)} ids, {len(hyps)} hypotheses, {len(refs)} references")
        for side, texts in (("hypothesis", hyps), ("reference", refs)):
            for study_id, text in zip(study_ids, texts):
                if not isinstance(text, str):
                    raise PredictionsError(f"study {study_id}: the {side} is {type(text).__name__}, not text")
        annotator = self.annotator(ctx.device)
        empty = [annotator.is_blank(h) or annotator.is_blank(r) for h, r in zip(hyps, refs)]
        kept = [i for i, is_empty in enumerate(empty) if not is_empty]
        texts = [hyps[i] for i in kept] + [refs[i] for i in kept]
        reannotated = annotator.reannotated
        annotations, hits, misses = annotator.annotate_cached(ctx.cache, texts, ctx.progress, ctx.batch_size)
        reannotated = annotator.reannotated - reannotated
        pairs: list[PairScores] = [EMPTY_PAIR] * len(study_ids)
        for position, index in enumerate(kept):
            pairs[index] = score_pair(annotations[position], annotations[position + len(kept)])
        stats = pd.DataFrame([p.as_dict() for p in pairs], columns=list(STAT_COLUMNS),
                             index=pd.Index(list(study_ids), name="study_id"), dtype=float)
        stats["empty"] = empty
        notes = []
        if misses and annotator.loop_reason:
            notes.append(f"RadGraph annotated one report per forward pass (the package's loop): "
                         f"{annotator.loop_reason}")
        if reannotated:
            notes.append(f"{reannotated} report(s) annotated again alone by the package's loop: a decision "
                         f"was within the near-tie tolerance on {ctx.device}")
        if sum(empty):
            notes.append(f"{sum(empty)} pair(s) with an empty hypothesis or reference scored 0 at every level "
                         f"(as F1RadGraph)")
        return ScoreResult(values=self.aggregate(stats), stats=stats, cache_hits=hits, cache_misses=misses,
                           notes=notes)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        """Report-level macro average, as F1RadGraph's ``np.mean(reward_list)``."""
        import numpy as np

        model = self.params.model

        def mean(column: str) -> float:
            values = stats[column].to_numpy(dtype=float)
            return float(np.mean(values)) if len(values) else float("nan")

        values = {level_column_id(model, level): mean(level) for level in LEVELS}
        values[er_mean_column_id(model)] = mean("er_mean")
        return values

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        """Each report's reward at every level (the package's ``reward_list`` entries) and its ER mean."""
        model = self.params.model
        view = stats[[*LEVELS, "er_mean"]].astype(float)
        view.columns = [*(level_column_id(model, level) for level in LEVELS), er_mean_column_id(model)]
        return view
