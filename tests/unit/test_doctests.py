"""The examples in the public API's docstrings run, exactly as printed (the README points at them)."""

from __future__ import annotations

import doctest
import importlib

import pytest

PUBLIC = ["rrg_bench.evaluation", "rrg_bench.specs", "rrg_bench.run.names", "rrg_bench.api"]


@pytest.mark.parametrize("module_name", PUBLIC)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module_name} has no examples"
    assert result.failed == 0
