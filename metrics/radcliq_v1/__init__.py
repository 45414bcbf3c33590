"""``radcliq_v1``: RadCliQ-v1 (Yu et al. 2023), a fixed linear model over four per-report metrics
that are scorers of their own; definition and evidence in CARD.md."""

from rrg_bench.metrics.radcliq_v1.scorer import RadCliQScorer

__all__ = ["RadCliQScorer"]
