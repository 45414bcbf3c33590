"""``green``: GREEN (an LLM counts clinically significant errors and matched findings);
definition, hardware and parity evidence in CARD.md."""
