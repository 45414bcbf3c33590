"""Spec strings, parsed once at the edge: ``--metrics 'default,nlg[tok=r2gen]'`` and ``name[k=v,...]``.

The command line and the Python API hand their strings here; everything below them works with
the canonical scorer specs this returns (suites expanded, duplicates dropped, order kept).

>>> parse_spec("nlg[tok=r2gen, x = 1]")
('nlg', {'tok': 'r2gen', 'x': '1'})
>>> split_specs("nlg[tok=ptb,x=1],chexbert")
['nlg[tok=ptb,x=1]', 'chexbert']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rrg_bench.errors import UsageError


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"nlg[tok=r2gen,x=1]"`` -> ``("nlg", {"tok": "r2gen", "x": "1"})``."""
    spec = spec.strip()
    if "[" not in spec:
        return spec, {}
    if not spec.endswith("]"):
        raise UsageError(f"malformed spec {spec!r}: expected name[key=value,...]")
    name, _, rest = spec.partition("[")
    params: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest[:-1].split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"malformed spec {spec!r}: {item!r} is not key=value")
        params[key.strip()] = value.strip()
    return name.strip(), params


def split_specs(text: str) -> list[str]:
    """Split on commas outside brackets; blank items are dropped."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def expand_metrics(specs: str | Sequence[str], *, _seen: tuple[str, ...] = ()) -> list[str]:
    """Scorer specs of a ``--metrics`` value: suites expanded (recursively), duplicates dropped.

    An empty result is a usage error: a run that scores nothing must not look like a result.
    """
    from rrg_bench.registry import registry

    suites, scorers = registry("suites"), registry("metrics")
    out: list[str] = []
    for text in [specs] if isinstance(specs, str) else specs:
        for item in split_specs(text):
            if item in suites and item not in scorers:
                if item in _seen:
                    raise UsageError(f"suite {item!r} includes itself")
                expanded = expand_metrics(list(suites.get(item).specs), _seen=(*_seen, item))
            else:
                expanded = [item]
            out.extend(e for e in expanded if e not in out)
    if not out and not _seen:
        shown = specs if isinstance(specs, str) else ",".join(specs)
        raise UsageError(f"--metrics {shown!r} names no scorer; e.g. --metrics default or --metrics nlg "
                         f"(`bench ls metrics` and `bench ls suites` list them)")
    return out


def build_scorer(spec: str) -> Any:
    """The registered scorer for one spec, parameters validated (``UsageError`` on a typo)."""
    from rrg_bench.registry import registry

    name, params = parse_spec(spec)
    return registry("metrics").get(name)(**params)


def build_scorers(specs: str | Sequence[str]) -> list[Any]:
    return [build_scorer(s) for s in expand_metrics(specs)]
