"""``chexbert``: CheXpert-label F1 from the CheXbert labeler, equal to f1chexbert 0.0.2.

The scorer (``scorer.py``) stays free of torch so that listing metrics never loads it; the
network, tokenisation, strict checkpoint loading and batched inference are in ``model.py``;
the definition and parity evidence in CARD.md. SembScore reuses this labeler's network.
"""

from rrg_bench.metrics.chexbert.scorer import CheXbertScorer

__all__ = ["CheXbertScorer"]
