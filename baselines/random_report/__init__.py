"""random_report: a random train report per study (a floor). See CARD.md; the generator is ``generate``."""
