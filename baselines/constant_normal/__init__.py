"""constant_normal: the same normal train report for every study (a floor). See CARD.md; the generator
is ``generate``."""
