"""``bertscore``: BERTScore as CXR-Report-Metric / ReXrank compute it, on a local model.

``scorer.py`` holds the convention and the scorer; ``model.py`` finds the model without a
network and drives bert-score's own embedding and matching code; CARD.md has the definition
and the parity evidence.
"""

from rrg_bench.metrics.bertscore.scorer import BertScoreScorer

__all__ = ["BertScoreScorer"]
