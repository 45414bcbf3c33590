"""Registered scorers and suites.

A scorer is selected on the command line as ``name`` or ``name[key=value,...]``; the
parameters are part of every column id it produces (e.g. ``bleu4[tok=ptb]``), so numbers made
under different conventions never share a column. A suite is a named list of scorer specs
(``--metrics default``).

Each scorer is a folder named after it — ``scorer.py``, its helpers, and its CARD.md —
and what several scorers share is in ``common/``.
"""

from rrg_bench.registry import Builtin

METRICS: dict[str, Builtin] = {
    "nlg": Builtin("rrg_bench.metrics.nlg.scorer:NLGScorer", "rrg_bench.metrics.nlg:CARD.md",
                   "BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (pycocoevalcap 1.2)"),
    "chexpert_rules": Builtin("rrg_bench.metrics.chexpert_rules.scorer:CheXpertRulesScorer",
                              "rrg_bench.metrics.chexpert_rules:CARD.md",
                              "CheXpert-label F1 from an offline rule labeler (no weights)"),
    "chexbert": Builtin("rrg_bench.metrics.chexbert.scorer:CheXbertScorer", "rrg_bench.metrics.chexbert:CARD.md",
                        "CheXpert 5/14-label F1 from the CheXbert labeler (f1chexbert-equal)"),
    "radgraph": Builtin("rrg_bench.metrics.radgraph.scorer:RadGraphScorer", "rrg_bench.metrics.radgraph:CARD.md",
                        "RadGraph F1 (simple/partial/complete), radgraph 0.1.18 models"),
    "bleu2_rexrank": Builtin("rrg_bench.metrics.bleu2_rexrank.scorer:Bleu2RexrankScorer",
                             "rrg_bench.metrics.bleu2_rexrank:CARD.md", "ReXrank's per-study BLEU-2 (fast-bleu)"),
    "bertscore": Builtin("rrg_bench.metrics.bertscore.scorer:BertScoreScorer", "rrg_bench.metrics.bertscore:CARD.md",
                         "BERTScore (bert-score 0.3.13 equal)"),
    "sembscore": Builtin("rrg_bench.metrics.sembscore.scorer:SembScoreScorer", "rrg_bench.metrics.sembscore:CARD.md",
                         "SembScore: cosine of CheXbert embeddings"),
    "radcliq_v1": Builtin("rrg_bench.metrics.radcliq_v1.scorer:RadCliQScorer", "rrg_bench.metrics.radcliq_v1:CARD.md",
                          "RadCliQ-v1 composite (lower is better)"),
    "radeval_text": Builtin("rrg_bench.metrics.radeval_text.scorer:RadEvalTextScorer",
                            "rrg_bench.metrics.radeval_text:CARD.md",
                            "RadEval's BLEU (whitespace tokens) and rouge_score ROUGE-1/2/L"),
    "temporal_f1": Builtin("rrg_bench.metrics.temporal_f1.scorer:TemporalF1Scorer",
                           "rrg_bench.metrics.temporal_f1:CARD.md",
                           "RadEval's temporal entity F1 (keywords + stanza radiology NER)"),
    "ratescore": Builtin("rrg_bench.metrics.ratescore.scorer:RaTEScoreScorer", "rrg_bench.metrics.ratescore:CARD.md",
                         "RaTEScore, entity-aware (ratescore 0.6.0 equal)"),
    "srrbert": Builtin("rrg_bench.metrics.srrbert.scorer:SRRBertScorer", "rrg_bench.metrics.srrbert:CARD.md",
                       "SRR-BERT weighted P/R/F1 over 163 finding-status labels (RadEval)"),
    "radeval_bertscore": Builtin("rrg_bench.metrics.radeval_bertscore.scorer:RadEvalBertScoreScorer",
                                 "rrg_bench.metrics.radeval_bertscore:CARD.md",
                                 "RadEval-BERTScore (RadEvalModernBERT, all 22 layers, no rescale)"),
    "green": Builtin("rrg_bench.metrics.green.scorer:GreenScorer", "rrg_bench.metrics.green:CARD.md",
                     "GREEN: LLM-judged clinically significant errors (GREEN-RadLlama2-7b)"),
}

SUITES: dict[str, Builtin] = {
    "default": Builtin("rrg_bench.metrics.suites:DEFAULT", "rrg_bench.metrics.suites:CARD.md",
                       "the field's headline metrics: NLG, CheXpert F1 (rules and CheXbert), RadGraph F1"),
    "rexrank": Builtin("rrg_bench.metrics.suites:REXRANK", "rrg_bench.metrics.suites:CARD.md",
                       "ReXrank's leaderboard metrics: BLEU-2, BERTScore, SembScore, RadGraph, RadCliQ-v1"),
    "radeval": Builtin("rrg_bench.metrics.suites:RADEVAL", "rrg_bench.metrics.suites:CARD.md",
                       "RadEval's README metrics, each under RadEval's convention"),
}

#: model weights the scorers use (``bench weights fetch NAME``); each entry's card is its scorer's
WEIGHTS: dict[str, Builtin] = {
    "chexbert": Builtin("rrg_bench.metrics.chexbert.weights:CHEXBERT", "rrg_bench.metrics.chexbert:CARD.md",
                        "CheXbert labeler checkpoint (chexbert.pth)"),
    "bert-base-uncased": Builtin("rrg_bench.metrics.chexbert.weights:BERT_BASE_UNCASED",
                                 "rrg_bench.metrics.chexbert:CARD.md", "CheXbert's tokenizer vocabulary and config"),
    "radgraph": Builtin("rrg_bench.metrics.radgraph.weights:RADGRAPH", "rrg_bench.metrics.radgraph:CARD.md",
                        "RadGraph v1 model (ReXrank / RadCliQ)"),
    "radgraph-xl": Builtin("rrg_bench.metrics.radgraph.weights:RADGRAPH_XL", "rrg_bench.metrics.radgraph:CARD.md",
                           "RadGraph-XL model (default)"),
    "modern-radgraph-xl": Builtin("rrg_bench.metrics.radgraph.weights:MODERN_RADGRAPH_XL",
                                  "rrg_bench.metrics.radgraph:CARD.md", "ModernBERT RadGraph-XL model"),
    "rate-ner-deberta": Builtin("rrg_bench.metrics.ratescore.weights:RATE_NER", "rrg_bench.metrics.ratescore:CARD.md",
                                "RaTEScore's entity tagger (DeBERTa-v3)"),
    "biolord-2023-c": Builtin("rrg_bench.metrics.ratescore.weights:BIOLORD", "rrg_bench.metrics.ratescore:CARD.md",
                              "RaTEScore's entity embedder (MPNet)"),
    "srr-bert-leaves-with-statuses": Builtin("rrg_bench.metrics.srrbert.weights:SRR_BERT",
                                             "rrg_bench.metrics.srrbert:CARD.md", "SRR-BERT classifier (163 labels)"),
    "cxr-bert-general-tokenizer": Builtin("rrg_bench.metrics.srrbert.weights:CXR_BERT_TOKENIZER",
                                          "rrg_bench.metrics.srrbert:CARD.md", "SRR-BERT's tokenizer files"),
    "radeval-modernbert": Builtin("rrg_bench.metrics.radeval_bertscore.weights:RADEVAL_MODERNBERT",
                                  "rrg_bench.metrics.radeval_bertscore:CARD.md", "RadEval-BERTScore's encoder"),
    "distilbert-base-uncased": Builtin("rrg_bench.metrics.radeval_bertscore.weights:DISTILBERT_BASE_UNCASED",
                                       "rrg_bench.metrics.radeval_bertscore:CARD.md",
                                       "RadEval's bertscore encoder (bertscore[model=distilbert-base-uncased])"),
    "green-radllama2-7b": Builtin("rrg_bench.metrics.green.weights:GREEN_RADLLAMA2_7B",
                                  "rrg_bench.metrics.green:CARD.md", "GREEN judge LLM (7B)"),
}
