"""A suite: a named list of metric specs that ``--metrics NAME`` expands to.

Suites are registry entries like scorers, so a plugin can ship the metric set its community
reports (``--metrics radeval``) and the name means the same list on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    """``specs`` are scorer specs (``nlg``, ``radgraph[model=radgraph]``) or other suite names."""

    specs: tuple[str, ...]
    description: str
    #: "package:file.md" of the card that explains the choice; None: the suite has no card of its own
    card: str | None = None
