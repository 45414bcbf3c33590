"""Progress bars for long work (generation, annotation), silent when asked or not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Advance = Callable[[int], None]


class ProgressReporter:
    """Hands out ``advance`` callbacks for named tasks; one live display per command."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: Progress | None = None

    @contextmanager
    def session(self) -> Iterator[ProgressReporter]:
        if not self.enabled:
            yield self
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
        )
        with self._progress:
            yield self
        self._progress = None

    def task(self, description: str, total: int, completed: int = 0) -> Advance:
        if self._progress is None:
            return _ignore
        task_id = self._progress.add_task(description, total=total, completed=completed)
        progress = self._progress

        def advance(n: int = 1) -> None:
            progress.advance(task_id, n)

        return advance


def _ignore(n: int = 1) -> None:
    """The ``advance`` of a silent reporter."""
