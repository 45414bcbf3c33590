"""Errors the CLI turns into one clear line and a non-zero exit code, never a traceback.

Everything a user can cause (bad predictions, missing data, missing weights, wrong data
version) raises a ``BenchError`` subclass whose message names the file, line or study and
says what to do. Programming errors stay ordinary exceptions so they are not hidden.
"""

from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input or environment; the message is shown as is."""

    exit_code = 1


class UsageError(BenchError):
    """Wrong combination of options or an unknown name."""

    exit_code = 2


class DataError(BenchError):
    """Data root missing, counts or reference hashes differ from the manifest."""


class PredictionsError(BenchError):
    """A predictions file is malformed, or its ids do not match the split."""


class WeightsUnavailable(BenchError):
    """A model-based metric or generator cannot find its weights (offline, not fetched)."""


class ToolUnavailable(BenchError):
    """An external program a scorer needs (Java for METEOR) is missing, fails or does not answer."""


class RunLocked(BenchError):
    """Another process is writing this run directory."""


class RegressionFound(BenchError):
    """``bench compare`` / ``leaderboard check`` found a regression or a difference."""

    exit_code = 3
