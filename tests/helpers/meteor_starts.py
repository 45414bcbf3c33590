"""Count the METEOR JVMs the nlg scorer starts (to show that a call reused the process's pooled ones)."""

from __future__ import annotations

from typing import Any


def count_meteor_starts(monkeypatch: Any) -> list[int]:
    """From now on, the pid of every METEOR JVM the nlg scorer starts (our server or the plain jar)
    is appended to the returned list."""
    from rrg_bench.metrics.nlg import scorer as nlg_scorer

    started: list[int] = []
    for name in ("MeteorProcess", "MeteorServer"):
        original = getattr(nlg_scorer, name)

        class Counting(original):  # type: ignore[misc,valid-type]
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                started.append(self.pid)

        Counting.__name__ = Counting.__qualname__ = name
        monkeypatch.setattr(nlg_scorer, name, Counting)
    return started
