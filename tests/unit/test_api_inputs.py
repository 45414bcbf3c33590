"""rrg_bench.score refuses malformed input with one clear UsageError before any scorer runs."""

from __future__ import annotations

import pytest

import rrg_bench
from rrg_bench.errors import UsageError


@pytest.mark.parametrize("hyps, refs, ids, message", [
    ("heart normal", ["heart normal"], None, "single string"),
    (["a", "b"], ["a"], None, "hyps has 2 reports but refs has 1"),
    ([], [], None, "nothing to score"),
    (["a", "b"], ["a", "b"], ["x", "x"], "ids must be unique"),
    (["a", None], ["a", "b"], None, "hyps: the report of study 1 is not a string"),
    (["a", "b"], ["a", "heart \ud800 normal"], ["s1", "s2"],
     "refs: the report of study s2 holds '\\\\ud800' at character 6"),
])
def test_malformed_input_is_one_clear_error(hyps, refs, ids, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        rrg_bench.score(hyps, refs, metrics="nlg", ids=ids, n_boot=0)
