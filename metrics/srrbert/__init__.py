"""``srrbert``: SRR-BERT finding/status labels per sentence, F1 per label weighted by support
(RadEval's ``srrbert``); definition and parity evidence in CARD.md."""
