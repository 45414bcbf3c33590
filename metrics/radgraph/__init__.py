"""``radgraph``: RadGraph F1 (Delbrouck levels) and the RadCliQ entity/relation mean.

Annotations come from the ``radgraph`` package through ``adapter.py`` (local files only,
de-duplicated, cached; also used on its own for S2D-Align's key phrases); the levels are
computed in ``rewards.py`` and equal the package's reward functions bit for bit; ``scorer.py``
turns them into columns; CARD.md has the definitions and evidence.
"""

from rrg_bench.metrics.radgraph.scorer import RadGraphScorer

__all__ = ["RadGraphScorer"]
