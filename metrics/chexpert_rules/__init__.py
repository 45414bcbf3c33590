"""``chexpert_rules``: an offline CheXpert-style labeler (no weights) and its F1 metric.

Why it exists: CheXbert needs a 1.3 GB checkpoint that many machines (and CI) do not have.
This labeler always runs, in pure Python + regex, so a clinical-label F1 is available
everywhere. It is *not* CheXbert and its numbers are reported under their own metric id
(``chexpert_rules_f1[...]``), never in a CheXbert column.

The rules are in ``labeler.py`` (also used on its own: baselines label train reports with
it), the phrase and trigger lists in ``phrases.py``, the scorer in ``scorer.py``, the check
against IU X-Ray's human MeSH codes in ``agreement.py``, the definition and evidence in CARD.md.
"""

from rrg_bench.metrics.chexpert_rules.scorer import CheXpertRulesScorer

__all__ = ["CheXpertRulesScorer"]
