"""The built-in suites: named metric sets that ``--metrics NAME`` expands to (see CARD.md).

A suite name never shadows a scorer: ``--metrics nlg`` is the scorer, always.
"""

from rrg_bench.api.suite import Suite

DEFAULT = Suite(("nlg", "chexpert_rules", "chexbert", "radgraph"),
                "the field's headline metrics: NLG, CheXpert F1 (rules and CheXbert), RadGraph F1")
REXRANK = Suite(("bleu2_rexrank", "bertscore", "sembscore", "radgraph[model=radgraph]", "radcliq_v1"),
                "ReXrank's leaderboard metrics", card="rrg_bench.metrics.suites:CARD.md")
#: RadEval's README metrics (radeval 2.2.1), each under RadEval's own convention; see CARD.md for
#: the metrics left out and every place our numbers can differ from RadEval's
RADEVAL = Suite(("radeval_text",
                 "bertscore[idf=false,layers=5,model=distilbert-base-uncased,rescale=true]",
                 "radeval_bertscore", "chexbert", "radgraph", "ratescore", "radgraph[model=radgraph]",
                 "srrbert", "temporal_f1", "green"),
                "RadEval's README metrics", card="rrg_bench.metrics.suites:CARD.md")
