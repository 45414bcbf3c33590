"""``radeval_text``: RadEval's own BLEU (whitespace tokens) and rouge_score ROUGE-1/2/L, under
column ids of their own; definition and parity evidence in CARD.md."""
