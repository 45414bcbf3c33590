"""The importers' strictness checks on a full-size state dict built on the meta device (no weights allocated)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from rrg_bench.errors import DataError


@contextlib.contextmanager
def strict_key_checks(convert: Callable[[dict[str, Any]], Any], expected: dict[str, tuple[int, ...]], *,
                      extra: str, drop: str, missing: str) -> Iterator[dict[str, Any]]:
    """``convert`` refuses the ``expected`` keys plus ``extra`` naming it as unexpected, then (``extra`` removed,
    ``drop`` removed) naming ``missing``; yields that state, still on the meta device, for further checks."""
    with torch.device("meta"):
        state = {k: torch.empty(shape) for k, shape in expected.items()}
        state[extra] = torch.empty(3)
        with pytest.raises(DataError, match=f"unexpected.*{re.escape(extra)}"):
            convert(state)
        del state[extra], state[drop]
        with pytest.raises(DataError, match=f"missing.*{re.escape(missing)}"):
            convert(state)
        yield state
