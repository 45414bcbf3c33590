"""Package layout: the repository's top-level folders install under one namespace, ``rrg_bench``.

The folders keep the names the design card uses (bench/, metrics/, baselines/, leaderboard/,
data_manifests/), but generic top-level import names collide with other distributions and with
a user's own ``metrics.py``; so the wheel maps them to ``rrg_bench``, ``rrg_bench.metrics``, …
Every folder holding an ``__init__.py`` below those roots is a package (computed, so a new
sub-package can never be forgotten). Everything else lives in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "rrg_bench": "bench",
    "rrg_bench.metrics": "metrics",
    "rrg_bench.baselines": "baselines",
    "rrg_bench.leaderboard": "leaderboard",
    "rrg_bench.data_manifests": "data_manifests",
}


def packages() -> list[str]:
    found = set()
    for package, folder in ROOTS.items():
        for init in Path(folder).rglob("__init__.py"):
            found.add(".".join((package, *init.parent.relative_to(folder).parts)))
    return sorted(found)


setup(package_dir=ROOTS, packages=packages())
