"""The house rules a reviewer can check by machine: small modules in the core, small functions
everywhere, and no block of code written twice.

Why a test and not a review note: each rule was broken once while the harness grew; a test keeps
a later change from quietly undoing the clean-up.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("bench", "baselines", "metrics", "leaderboard")
MAX_CORE_MODULE_LINES = 300
MAX_FUNCTION_LINES = 80
#: model forward passes may be long (one computation, read top to bottom against the paper)
LONG_FUNCTIONS_ALLOWED = {"forward"}
DUPLICATE_RUN = 6


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (REPO / f).rglob("*.py") if "__pycache__" not in p.parts)


def test_core_modules_are_under_300_lines():
    long = {str(p.relative_to(REPO)): n for p in _python_files("bench")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_CORE_MODULE_LINES}
    assert long == {}, f"modules under bench/ must stay under {MAX_CORE_MODULE_LINES} lines: {long}"


def test_functions_are_under_80_lines():
    long = []
    for path in _python_files(*PRODUCT):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in LONG_FUNCTIONS_ALLOWED:
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert long == [], "functions over 80 lines:\n" + "\n".join(long)


_SKIP = re.compile(r"^(#|import |from \S+ import |[\)\]\}]+[,:]?$|\"\"\"$|'''$|else:$|try:$|pass$|return$)")


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, whitespace-folded text) of the lines that carry code."""
    out = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = " ".join(raw.split())
        if text and not _SKIP.match(text):
            out.append((number, text))
    return out


def test_no_block_of_six_identical_lines_is_repeated():
    places: dict[tuple[str, ...], list[tuple[str, int, int]]] = defaultdict(list)  # window -> (file, index, line)
    for path in _python_files(*PRODUCT):
        lines = _code_lines(path)
        name = str(path.relative_to(REPO))
        for i in range(len(lines) - DUPLICATE_RUN + 1):
            places[tuple(text for _, text in lines[i:i + DUPLICATE_RUN])].append((name, i, lines[i][0]))
    starts = {(f, i) for where in places.values() if len(where) > 1 for f, i, _ in where}
    repeated = []
    for where in places.values():
        distinct = [w for k, w in enumerate(where) if all(w[1] >= o[1] + DUPLICATE_RUN or w[0] != o[0]
                                                         for o in where[:k])]
        if len(distinct) > 1 and (distinct[0][0], distinct[0][1] - 1) not in starts:  # report a run once
            repeated.append(" ~ ".join(f"{f}:{line}" for f, _, line in distinct))
    assert repeated == [], f"runs of {DUPLICATE_RUN} identical code lines found twice:\n" + "\n".join(repeated)
