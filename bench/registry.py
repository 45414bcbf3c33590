"""One lazy registry for generators, metrics and datasets, fed by built-ins and entry points.

Entries are ``"module:attr"`` strings or entry points and are imported only when asked
for, so ``bench ls`` and ``bench --help`` stay fast and a broken third-party plugin fails
only when it is used, with a message naming its distribution.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, Iterator, TypeVar

from rrg_bench.errors import UsageError

T = TypeVar("T")

ENTRY_POINT_GROUPS = {
    "generators": "rrg_bench.generators",
    "metrics": "rrg_bench.metrics",
    "datasets": "rrg_bench.datasets",
}


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:attr"
    origin: str  # "builtin" or "plugin:<dist>==<version>"


class Registry(Generic[T]):
    """Name -> lazily imported object. Unknown names fail with close-match suggestions."""

    def __init__(self, kind: str, builtins: dict[str, str]) -> None:
        self.kind = kind
        self._builtins = dict(builtins)
        self._entries: dict[str, Entry] | None = None
        self._loaded: dict[str, T] = {}

    def _discover(self) -> dict[str, Entry]:
        if self._entries is not None:
            return self._entries
        entries = {n: Entry(n, t, "builtin") for n, t in self._builtins.items()}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUPS[self.kind]):
            dist = getattr(ep, "dist", None)
            origin = f"plugin:{dist.name}=={dist.version}" if dist else "plugin"
            if ep.name in entries and entries[ep.name].origin == "builtin":
                # a plugin may not shadow a built-in; it stays reachable by its qualified name
                qualified = f"{dist.name if dist else 'plugin'}:{ep.name}"
                entries[qualified] = Entry(qualified, ep.value, origin)
                continue
            entries[ep.name] = Entry(ep.name, ep.value, origin)
        self._entries = entries
        return entries

    def names(self) -> list[str]:
        return sorted(self._discover())

    def entries(self) -> Iterator[Entry]:
        for name in self.names():
            yield self._discover()[name]

    def entry(self, name: str) -> Entry:
        entries = self._discover()
        if name not in entries:
            close = difflib.get_close_matches(name, entries, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UsageError(
                f"unknown {self.kind[:-1]} {name!r}.{hint} Known: {', '.join(sorted(entries))}. "
                f"(`bench ls {self.kind}` lists them; plugins register through the "
                f"'{ENTRY_POINT_GROUPS[self.kind]}' entry-point group.)"
            )
        return entries[name]

    def get(self, name: str) -> T:
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        module_name, _, attr = entry.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except Exception as exc:  # a plugin's import error must name the plugin
            raise UsageError(
                f"{self.kind[:-1]} {name!r} ({entry.origin}) could not be loaded from "
                f"{entry.target!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = obj
        return obj


def _builtins(module: str) -> dict[str, str]:
    return dict(importlib.import_module(module).BUILTINS)


_REGISTRIES: dict[str, Registry[Any]] = {}


def registry(kind: str) -> Registry[Any]:
    """The process-wide registry for ``generators``, ``metrics`` or ``datasets``."""
    if kind not in ENTRY_POINT_GROUPS:
        raise ValueError(kind)
    if kind not in _REGISTRIES:
        source = {"generators": "rrg_bench.baselines", "metrics": "rrg_bench.metrics", "datasets": "rrg_bench.datasets"}[kind]
        _REGISTRIES[kind] = Registry(kind, _builtins(source))
    return _REGISTRIES[kind]


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
