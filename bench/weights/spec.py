"""What a weights entry is: one pinned artefact on the Hugging Face Hub, and where upstream keeps it.

Entries are declared by the package that uses them (``rrg_bench.metrics.chexbert.weights``,
``rrg_bench.baselines.anat_attn.weights``, a plugin's module) and registered under the kind
``weights``, so ``bench weights fetch NAME`` knows every model any installed scorer or
generator can ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: where an upstream package keeps its own copy, looked at after our weights dir:
#: ``f1chexbert`` (appdirs cache "chexbert"), ``radgraph`` (appdirs cache "radgraph/<version>/<name>"),
#: ``hf-cache`` (the local Hugging Face cache of ``repo_id`` and ``aliases``)
Upstream = Literal["f1chexbert", "radgraph", "hf-cache"]


@dataclass(frozen=True)
class WeightSpec:
    """One known artefact. ``kind``: ``file`` (one file), ``archive`` (a .tar.gz extracted to a
    directory) or ``files`` (several files of one repo, kept in a directory)."""

    name: str
    repo_id: str
    #: the pinned commit; ``None`` when it could not be learned offline: recorded at first fetch
    revision: str | None
    files: tuple[str, ...]
    kind: str
    env: str
    description: str
    sha256: dict[str, str] = field(default_factory=dict)  # filename -> known sha256
    size: dict[str, int] = field(default_factory=dict)  # filename -> known size in bytes
    #: directory entries must contain this file to count as present
    marker: str | None = None
    upstream: tuple[Upstream, ...] = ()
    #: other hub ids the same files are published under (looked up in the HF cache too)
    aliases: tuple[str, ...] = ()

    @property
    def short_revision(self) -> str:
        return self.revision[:12] if self.revision else "(unpinned: recorded at first fetch)"


def names() -> list[str]:
    from rrg_bench.registry import registry

    return registry("weights").names()


def spec(name: str) -> WeightSpec:
    """The registered entry ``name`` (unknown names fail with suggestions)."""
    from rrg_bench.registry import registry

    found = registry("weights").get(name)
    if not isinstance(found, WeightSpec):
        raise TypeError(f"weights entry {name!r} is a {type(found).__name__}, not a WeightSpec")
    return found
