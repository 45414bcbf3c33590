"""oracle: the reference itself (a sanity ceiling, never ranked). See CARD.md; the generator is ``generate``."""
