"""Registered scorers and suites.

A scorer is selected on the command line as ``name`` or ``name[key=value,...]``; the
parameters are part of every column id it produces (e.g. ``bleu4[tok=ptb]``), so numbers made
under different conventions never share a column. A suite is a named list of scorer specs
(``--metrics default``).
"""

from rrg_bench.registry import Builtin

METRICS: dict[str, Builtin] = {
    "nlg": Builtin("rrg_bench.metrics.nlg:NLGScorer", "rrg_bench.metrics:cards/nlg.md",
                   "BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (pycocoevalcap 1.2)"),
    "chexpert_rules": Builtin("rrg_bench.metrics.chexpert_rules:CheXpertRulesScorer",
                              "rrg_bench.metrics:cards/chexpert_rules_f1.md",
                              "CheXpert-label F1 from an offline rule labeler (no weights)"),
    "chexbert": Builtin("rrg_bench.metrics.chexbert:CheXbertScorer", "rrg_bench.metrics:cards/chexbert_f1.md",
                        "CheXpert 5/14-label F1 from the CheXbert labeler (f1chexbert-equal)"),
    "radgraph": Builtin("rrg_bench.metrics.radgraph:RadGraphScorer", "rrg_bench.metrics:cards/radgraph_f1.md",
                        "RadGraph F1 (simple/partial/complete), radgraph 0.1.18 models"),
    "bleu2_rexrank": Builtin("rrg_bench.metrics.bleu2_fast:Bleu2RexrankScorer",
                             "rrg_bench.metrics:cards/bleu2_rexrank.md", "ReXrank's per-study BLEU-2 (fast-bleu)"),
    "bertscore": Builtin("rrg_bench.metrics.bertscore:BertScoreScorer", "rrg_bench.metrics:cards/bertscore.md",
                         "BERTScore (bert-score 0.3.13 equal)"),
    "sembscore": Builtin("rrg_bench.metrics.sembscore:SembScoreScorer", "rrg_bench.metrics:cards/sembscore.md",
                         "SembScore: cosine of CheXbert embeddings"),
    "radcliq_v1": Builtin("rrg_bench.metrics.radcliq:RadCliQScorer", "rrg_bench.metrics:cards/radcliq_v1.md",
                          "RadCliQ-v1 composite (lower is better)"),
}

SUITES: dict[str, Builtin] = {
    "default": Builtin("rrg_bench.metrics.suites:DEFAULT", "rrg_bench.metrics.suites:CARD.md",
                       "the field's headline metrics: NLG, CheXpert F1 (rules and CheXbert), RadGraph F1"),
    "rexrank": Builtin("rrg_bench.metrics.suites:REXRANK", "rrg_bench.metrics.suites:CARD.md",
                       "ReXrank's leaderboard metrics: BLEU-2, BERTScore, SembScore, RadGraph, RadCliQ-v1"),
}
