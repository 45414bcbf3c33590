"""RadCliQ-v1 (Yu et al. 2023): a fixed linear model over four per-report metrics.

Definition (rajpurkarlab/CXR-Report-Metric ``CXRMetric/run_eval.py``, ``CompositeMetric`` and
``radcliq-v1.pkl``): for each report, ``x = [radgraph_combined, bertscore, semb_score,
bleu_score]`` is standardised with the pickled ``StandardScaler`` (``(x - mean_) / scale_``),
a 1 is appended, and the result is ``[z, 1] @ coefs``. Lower is better (it estimates the number
of errors a radiologist would find). The pickle needs a compatible scikit-learn to load, so
the fitted values are written out below; they are the values RadEval hard-codes
(jbdel/RadEval ``radeval/metrics/RadCliQv1/radcliq.py``, "learnt parameters" read from the
pickle), to 8-9 significant digits. tests/metrics/test_rexrank_radcliq.py shows they reproduce
the ``RadCliQ-v1`` column of a published CXR-Report-Metric run (MoERad, 590 IU X-Ray studies)
from its four component columns within 3e-8.

The four components are this package's ``radgraph[model=radgraph]`` (entity/relation F1
mean), ``bertscore`` (distilroberta-base, layer 5, rescaled), ``sembscore`` and
``bleu2_rexrank``. ``radcliq_v1`` runs them (a suite that also lists them reuses their
cached annotations / recent results) and reports the mean per-report RadCliQ-v1 and
ReXrank's ranking number ``1/RadCliQ-v1`` = 1 / (mean per-report RadCliQ-v1), as RadEval
computes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.errors import BenchError, WeightsUnavailable

if TYPE_CHECKING:
    import pandas as pd

#: feature order of ``radcliq-v1.pkl`` (CXR-Report-Metric COLS)
FEATURES: tuple[str, ...] = ("radgraph_combined", "bertscore", "semb_score", "bleu_score")
#: StandardScaler fitted on 160 reports
SCALER_MEAN = np.array([0.53792312, 0.61757256, 0.76479421, 0.44738335])
SCALER_SCALE = np.array([0.30282584, 0.22430938, 0.25394391, 0.29892717])
#: linear coefficients in FEATURES order, then the intercept
COEFS = np.array([-3.77083683e-01, -3.70300100e-01, -2.52616218e-01, 4.31504841e-12, 2.46655256e-10])

RADGRAPH_SPEC = "radgraph[model=radgraph]"
RADGRAPH_COLUMN = "radgraph_er_mean[model=radgraph]"


def radcliq_v1(radgraph_combined: Any, bertscore: Any, semb_score: Any, bleu_score: Any) -> np.ndarray:
    """Per-report RadCliQ-v1, as ``CompositeMetric.predict`` (scaler, append 1, dot coefs)."""
    x = np.column_stack([np.asarray(v, dtype=np.float64).reshape(-1)
                         for v in (radgraph_combined, bertscore, semb_score, bleu_score)])
    z = (x - SCALER_MEAN) / SCALER_SCALE
    z = np.concatenate((z, np.ones((z.shape[0], 1))), axis=1)
    return z @ COEFS


class RadCliQParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: BERTScore with IDF weights from the references (see metrics/bertscore/CARD.md)
    idf: bool = False
    #: local weights, passed to the components; not part of the spec
    bertscore_model_dir: str | None = None
    chexbert_ckpt: str | None = None
    chexbert_tokenizer: str | None = None
    chexbert_config: str | None = None
    radgraph_model_dir: str | None = None


class RadCliQScorer(Scorer):
    """RadCliQ-v1 per report from its four components; mean (lower better) and 1/mean (ReXrank)."""

    name = "radcliq_v1"
    version = "1"
    Params = RadCliQParams
    params: RadCliQParams

    def __init__(self, *, components: dict[str, Any] | None = None, **params: Any) -> None:
        super().__init__(**params)
        self._components = components  # tests inject doubles; None = the registered scorers

    @property
    def spec(self) -> str:
        return f"{self.name}[idf={str(self.params.idf).lower()}]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {"idf": self.params.idf},
                "impl": self.impl()}

    def components(self) -> dict[str, Any]:
        """The four component scorers, by RadCliQ feature name."""
        if self._components is None:
            from rrg_bench.metrics.bertscore.scorer import BertScoreScorer
            from rrg_bench.metrics.bleu2_rexrank.scorer import Bleu2RexrankScorer
            from rrg_bench.metrics.radgraph.scorer import RadGraphScorer
            from rrg_bench.metrics.sembscore.scorer import SembScoreScorer

            p = self.params
            self._components = {
                "radgraph_combined": RadGraphScorer(model="radgraph", model_dir=p.radgraph_model_dir),
                "bertscore": BertScoreScorer(model="distilroberta-base", idf=p.idf, rescale=True,
                                             model_dir=p.bertscore_model_dir),
                "semb_score": SembScoreScorer(ckpt=p.chexbert_ckpt, tokenizer=p.chexbert_tokenizer,
                                              config=p.chexbert_config),
                "bleu_score": Bleu2RexrankScorer(),
            }
        return self._components

    @property
    def mean_id(self) -> str:
        return self.spec

    @property
    def inverse_id(self) -> str:
        return f"inv_{self.name}[idf={str(self.params.idf).lower()}]"

    def columns(self) -> list[Column]:
        parts = ("radgraph[model=radgraph] entity/relation F1 mean, bertscore (distilroberta-base L5, rescaled, "
                 f"{'IDF' if self.params.idf else 'no IDF'}), sembscore, bleu2_rexrank")
        return [
            Column(id=self.mean_id, display="RadCliQ-v1", higher_is_better=False,
                   convention=(f"per-report RadCliQ-v1 (CXR-Report-Metric radcliq-v1.pkl scaler + linear model) over "
                               f"{parts}; mean over reports; lower is better")),
            Column(id=self.inverse_id, display="1/RadCliQ-v1",
                   convention=(f"1 / (mean per-report RadCliQ-v1) over {parts}; ReXrank's ranking metric, "
                               f"higher is better")),
        ]

    def unavailable_reason(self) -> str | None:
        reasons = []
        for feature, scorer in self.components().items():
            reason = scorer.unavailable_reason()
            if reason is not None:
                reasons.append(f"[{feature}] {reason}")
        return "RadCliQ-v1 needs all four components: " + " | ".join(reasons) if reasons else None

    def impl(self) -> dict[str, Any]:
        return {"implementation": f"metrics.radcliq v{self.version}",
                "constants": "CXR-Report-Metric radcliq-v1.pkl as hard-coded by RadEval",
                "components": {f: s.impl() for f, s in self.components().items()}}

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        reason = self.unavailable_reason()
        if reason is not None:
            raise WeightsUnavailable(reason)
        per_feature: dict[str, np.ndarray] = {}
        hits = misses = 0
        notes: list[str] = []
        stat_column = {"radgraph_combined": "er_mean", "bertscore": "f1", "semb_score": "semb", "bleu_score": "bleu2"}
        for feature, scorer in self.components().items():
            result = scorer.score(study_ids, hyps, refs, ctx)
            column = stat_column[feature]
            if column not in result.stats.columns:
                raise BenchError(f"radcliq_v1: component {feature} returned no {column!r} statistics")
            per_feature[feature] = result.stats[column].to_numpy(dtype=np.float64)
            hits += result.cache_hits
            misses += result.cache_misses
            notes += [f"{feature}: {n}" for n in result.notes]
        stats = pd.DataFrame({f: per_feature[f] for f in FEATURES}, index=pd.Index(list(study_ids), name="study_id"))
        stats["radcliq_v1"] = radcliq_v1(*(stats[f] for f in FEATURES))
        return ScoreResult(values=self.aggregate(stats), stats=stats, cache_hits=hits, cache_misses=misses,
                           notes=notes)

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        return stats[["radcliq_v1"]].rename(columns={"radcliq_v1": self.mean_id})

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["radcliq_v1"].to_numpy(dtype=np.float64)
        mean = float(np.mean(values)) if len(values) else float("nan")
        return {self.mean_id: mean, self.inverse_id: 1.0 / mean if mean else float("nan")}
