"""What every ``bench`` sub-command shares: the two consoles and the error boundary.

User-caused problems end in one red ``error:`` line and a non-zero exit code — 1 error, 2 usage,
3 regression — never a traceback: ``BenchError`` (the harness's own), ``OSError`` (a read-only
or missing directory, a full disk: the message names the path), Ctrl-C and SIGTERM (with a
resume hint; every write is journalled or atomic, so rerunning the command resumes).
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from rrg_bench.errors import BenchError

F = TypeVar("F", bound=Callable[..., Any])

out = Console()
err = Console(stderr=True)


def error_line(message: str) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(' '.join(message.split()))}", highlight=False, soft_wrap=True)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def handles_errors(fn: F) -> F:
    """Turn BenchError / OSError into one line + exit code; Ctrl-C and SIGTERM into a resume hint."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            previous = signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread (an embedding application): leave signals alone
            previous = None
        try:
            return fn(*args, **kwargs)
        except BenchError as exc:
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            error_line(f"{where}{exc.strerror or exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: rerun the same command to resume where it stopped")
            raise typer.Exit(130) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


def hide_flag_types() -> None:
    """Typer >= 0.2x prints a value type beside every option, ``<bool>`` for on/off flags too, which
    reads as if the flag took a value; show nothing there for flags (explicit metavars stay)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - older typer prints no types
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_rrg_bench", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)  # type: ignore[no-any-return]

    display_type_rich._rrg_bench = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
