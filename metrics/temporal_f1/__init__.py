"""``temporal_f1``: RadEval's temporal entity F1 (keyword regex, plus stanza's radiology NER);
definition and parity evidence in CARD.md."""
