"""What every ``bench`` sub-command shares: the two consoles and the error boundary.

User-caused problems (``BenchError``) end in one red line and the error's exit code — 1 error,
2 usage, 3 regression — never a traceback; Ctrl-C ends with a resume hint.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from rrg_bench.errors import BenchError

F = TypeVar("F", bound=Callable[..., Any])

out = Console()
err = Console(stderr=True)


def handles_errors(fn: F) -> F:
    """Turn BenchError into one line + exit code; Ctrl-C into a resume hint."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BenchError as exc:
            err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: rerun the same command to resume where it stopped")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
