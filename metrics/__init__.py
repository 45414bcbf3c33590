"""Registered scorers. Each name maps lazily to a ``metrics.base.Scorer`` subclass.

A scorer is selected on the command line as ``name`` or ``name[key=value,...]``; the
parameters are part of every column id it produces (e.g. ``bleu4[tok=ptb]``), so numbers made
under different conventions never share a column.
"""

BUILTINS: dict[str, str] = {
    "nlg": "rrg_bench.metrics.nlg:NLGScorer",
    "chexpert_rules": "rrg_bench.metrics.chexpert_rules:CheXpertRulesScorer",
    "chexbert": "rrg_bench.metrics.chexbert:CheXbertScorer",
    "radgraph": "rrg_bench.metrics.radgraph:RadGraphScorer",
    "bleu2_rexrank": "rrg_bench.metrics.bleu2_fast:Bleu2RexrankScorer",
    "bertscore": "rrg_bench.metrics.bertscore:BertScoreScorer",
    "sembscore": "rrg_bench.metrics.sembscore:SembScoreScorer",
    "radcliq_v1": "rrg_bench.metrics.radcliq:RadCliQScorer",
}

#: what ``--metrics default`` expands to (a named, versioned suite)
SUITES: dict[str, list[str]] = {
    "default": ["nlg", "chexpert_rules", "chexbert", "radgraph"],
    "nlg": ["nlg"],
    "rexrank": ["bleu2_rexrank", "bertscore", "sembscore", "radgraph[model=radgraph]", "radcliq_v1"],
}
