"""The built-in suites: named metric sets that ``--metrics NAME`` expands to (see CARD.md).

A suite name never shadows a scorer: ``--metrics nlg`` is the scorer, always.
"""

from rrg_bench.api.suite import Suite

DEFAULT = Suite(("nlg", "chexpert_rules", "chexbert", "radgraph"),
                "the field's headline metrics: NLG, CheXpert F1 (rules and CheXbert), RadGraph F1")
REXRANK = Suite(("bleu2_rexrank", "bertscore", "sembscore", "radgraph[model=radgraph]", "radcliq_v1"),
                "ReXrank's leaderboard metrics", card="rrg_bench.metrics.suites:CARD.md")
