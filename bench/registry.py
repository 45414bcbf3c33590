"""One registry for everything pluggable: generators, metrics (scorers), datasets, suites,
trainers, data preparers and model weights.

Each kind has an entry-point group (``rrg_bench.<kind>``) and a table of built-ins declared
where they live (``rrg_bench.baselines.GENERATORS``, ``rrg_bench.metrics.SUITES``, …). Entries
are ``"module:attr"`` strings imported only when asked for, so ``bench ls`` and ``bench --help``
stay fast and a broken plugin fails only when used, with a message naming its distribution.
Every entry names its card (a Markdown file beside what it describes), so ``bench ls --card``
works the same for a built-in and for a plugin.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.resources
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rrg_bench.errors import UsageError


@dataclass(frozen=True)
class Builtin:
    """A built-in entry: ``target`` is ``"module:attr"``; ``card`` is ``"package:file.md"``."""

    target: str
    card: str | None = None
    summary: str = ""


@dataclass(frozen=True)
class Kind:
    name: str  # "generators"
    singular: str  # "generator"
    group: str  # entry-point group
    builtins: tuple[str, ...]  # "module:ATTR"s, each holding a dict[str, Builtin]


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("generators", "generator", "rrg_bench.generators", ("rrg_bench.baselines:GENERATORS",)),
    Kind("metrics", "metric", "rrg_bench.metrics", ("rrg_bench.metrics:METRICS",)),
    Kind("datasets", "dataset", "rrg_bench.datasets", ("rrg_bench.datasets:DATASETS",)),
    Kind("suites", "suite", "rrg_bench.suites", ("rrg_bench.metrics:SUITES",)),
    Kind("trainers", "trainer", "rrg_bench.trainers", ("rrg_bench.baselines:TRAINERS",)),
    Kind("preparers", "preparer", "rrg_bench.preparers", ("rrg_bench.datasets:PREPARERS",)),
    Kind("weights", "weights entry", "rrg_bench.weights", ("rrg_bench.metrics:WEIGHTS", "rrg_bench.baselines:WEIGHTS")),
)}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    target: str  # "module:attr"
    origin: str  # "builtin" or "plugin:<dist>==<version>"
    card: str | None = None  # "package:file.md"; None: found beside the target's module
    summary: str = ""


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def resource(spec: str) -> Path:
    """``"rrg_bench.metrics.nlg:CARD.md"`` -> the file inside that package."""
    package, _, name = spec.partition(":")
    return Path(str(importlib.resources.files(package).joinpath(*name.split("/"))))


class Registry:
    """Name -> lazily imported object of one kind. Unknown names fail with close matches."""

    def __init__(self, kind: Kind, builtins: dict[str, Builtin] | None = None) -> None:
        self.kind = kind
        self._builtins = builtins
        self._entries: dict[str, Entry] | None = None
        self._loaded: dict[str, Any] = {}

    def _discover(self) -> dict[str, Entry]:
        if self._entries is not None:
            return self._entries
        builtins = self._builtins if self._builtins is not None else {
            name: entry for table in self.kind.builtins for name, entry in _import_target(table).items()}
        entries = {n: Entry(self.kind.name, n, b.target, "builtin", b.card, b.summary) for n, b in builtins.items()}
        for ep in metadata.entry_points(group=self.kind.group):
            dist = getattr(ep, "dist", None)
            origin = f"plugin:{dist.name}=={dist.version}" if dist else "plugin"
            name = ep.name
            if name in entries and entries[name].origin == "builtin":
                # a plugin may not shadow a built-in; it stays reachable by its qualified name
                name = f"{dist.name if dist else 'plugin'}:{ep.name}"
            entries[name] = Entry(self.kind.name, name, ep.value, origin)
        self._entries = entries
        return entries

    def register(self, name: str, obj: Any, *, card: str | None = None, summary: str = "") -> None:
        """Add an in-process entry (a notebook's own scorer, a test double); it may not shadow another."""
        entries = self._discover()
        if name in entries:
            raise UsageError(f"{self.kind.singular} {name!r} is already registered ({entries[name].origin})")
        module = getattr(obj, "__module__", "__main__")
        entries[name] = Entry(self.kind.name, name, f"{module}:{getattr(obj, '__qualname__', name)}", "runtime",
                              card, summary)
        self._loaded[name] = obj

    def unregister(self, name: str) -> None:
        """Remove an entry added with ``register`` (built-ins and plugins cannot be removed)."""
        entry = self.entry(name)
        if entry.origin != "runtime":
            raise UsageError(f"{self.kind.singular} {name!r} is {entry.origin}; only runtime entries can be removed")
        del self._discover()[name]
        self._loaded.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._discover())

    def entries(self) -> Iterator[Entry]:
        for name in self.names():
            yield self._discover()[name]

    def __contains__(self, name: str) -> bool:
        return name in self._discover()

    def entry(self, name: str) -> Entry:
        entries = self._discover()
        if name not in entries:
            close = difflib.get_close_matches(name, entries, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UsageError(
                f"unknown {self.kind.singular} {name!r}.{hint} Known: {', '.join(sorted(entries)) or 'none'}. "
                f"(`bench ls {self.kind.name}` lists them; plugins register through the "
                f"'{self.kind.group}' entry-point group.)"
            )
        return entries[name]

    def get(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        try:
            obj = _import_target(entry.target)
        except Exception as exc:  # a plugin's import error must name the plugin
            raise UsageError(
                f"{self.kind.singular} {name!r} ({entry.origin}) could not be loaded from "
                f"{entry.target!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = obj
        return obj

    def card(self, name: str) -> Path | None:
        """The entry's card: as declared, else the object's ``card`` attribute, else a CARD.md
        beside the module that defines it."""
        entry = self.entry(name)
        if entry.card:
            return resource(entry.card)
        obj = self.get(name)
        declared = getattr(obj, "card", None)
        module = importlib.import_module(getattr(obj, "__module__", None) or entry.target.partition(":")[0])
        here = Path(module.__file__ or ".").parent
        if isinstance(declared, str):
            return resource(declared) if ":" in declared else here / declared
        candidate = here / "CARD.md"
        return candidate if candidate.is_file() else None

    def summary(self, name: str) -> str:
        entry = self.entry(name)
        if entry.summary:
            return entry.summary
        try:
            doc = getattr(self.get(name), "__doc__", None) or ""
        except UsageError as exc:
            return f"(cannot load: {exc})"
        return doc.strip().splitlines()[0] if doc.strip() else ""


_REGISTRIES: dict[str, Registry] = {}


def registry(kind: str) -> Registry:
    """The process-wide registry of one kind (``bench ls`` lists them all)."""
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind not in _REGISTRIES:
        _REGISTRIES[kind] = Registry(KINDS[kind])
    return _REGISTRIES[kind]


def load(kind: str, name: str) -> Any:
    return registry(kind).get(name)
