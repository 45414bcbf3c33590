"""Count the METEOR JVMs the nlg scorer starts (to show that a call reused the process's pooled ones)."""

from __future__ import annotations

from typing import Any


def count_meteor_starts(monkeypatch: Any) -> list[int]:
    """From now on, the pid of every METEOR JVM the nlg scorer starts is appended to the returned list."""
    from rrg_bench.metrics.nlg import scorer as nlg_scorer

    started: list[int] = []
    original = nlg_scorer.MeteorProcess

    class Counting(original):  # type: ignore[misc,valid-type]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            started.append(self.pid)

    monkeypatch.setattr(nlg_scorer, "MeteorProcess", Counting)
    return started
