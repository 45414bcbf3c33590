"""``bleu2_rexrank``: ReXrank's per-report BLEU-2, bit-equal to fast_bleu 0.0.90 without the C++
extension; definition and parity evidence in CARD.md."""

from rrg_bench.metrics.bleu2_rexrank.scorer import Bleu2RexrankScorer

__all__ = ["Bleu2RexrankScorer"]
