"""``sembscore``: cosine of CheXbert [CLS] embeddings (CXR-Report-Metric ``semb_score``), on the
CheXbert network of ``metrics.chexbert``; definition and parity evidence in CARD.md."""

from rrg_bench.metrics.sembscore.scorer import SembScoreScorer

__all__ = ["SembScoreScorer"]
