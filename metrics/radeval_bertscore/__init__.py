"""``radeval_bertscore``: RadEval-BERTScore (BERTScore F1 on IAMJB/RadEvalModernBERT, all 22
layers, no IDF, no rescaling); definition and parity evidence in CARD.md."""
