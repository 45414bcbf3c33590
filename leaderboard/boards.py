"""Board specs (``boards/<board>.yaml``) and where a board's records and tables live.

A board is a promise about comparability: one dataset manifest and split (pinned by name,
manifest version and reference hash), a fixed list of canonical metric ids, a sort key and
eligibility rules. Everything a table shows follows from the spec and the records, so the
spec is hashed into every table's provenance, and a published version is never rewritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rrg_bench.errors import BenchError, UsageError
from rrg_bench.hashing import sha256_json


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetPin(_Strict):
    """Which references a record must have been scored on."""

    name: str
    split: str
    manifest_version: str | None = None
    manifest_sha256: str | None = None
    references_sha256: str | None = None


class SortKey(_Strict):
    metric: str
    #: default: descending when the metric's ``higher_is_better``
    order: Literal["asc", "desc"] | None = None


class Eligibility(_Strict):
    """Rules a record must meet to be ranked (records failing them are shown, marked)."""

    min_coverage: float = Field(default=1.0, ge=0.0, le=1.0)
    allow_limit: bool = False
    require_all_columns: bool = True
    #: metric id -> required ``metric_version``
    metric_versions: dict[str, str] = Field(default_factory=dict)
    #: ``impl`` keys that may differ within a column (e.g. a Java patch version); default none
    ignore_impl: list[str] = Field(default_factory=list)


class Plots(_Strict):
    #: metrics that get a bar chart with CI whiskers; default: the sort metric
    headline: list[str] = Field(default_factory=list)
    #: metric whose per-label values feed the heatmap; default: first column that has them
    per_label: str | None = None
    per_label_value: str = "f1"


class BoardSpec(_Strict):
    board: str
    version: int = Field(ge=1)
    title: str
    dataset: DatasetPin
    columns: list[str] = Field(min_length=1)
    sort: SortKey
    eligibility: Eligibility = Field(default_factory=Eligibility)
    show_ci: bool = True
    plots: Plots = Field(default_factory=Plots)
    notes: list[str] = Field(default_factory=list)

    @field_validator("board")
    @classmethod
    def _board_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", value):
            raise ValueError("board names use lower-case letters, digits, '_', '.', '-'")
        return value

    @model_validator(mode="after")
    def _columns_consistent(self) -> BoardSpec:
        dupes = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if dupes:
            raise ValueError(f"columns listed twice: {dupes}")
        named = {"sort.metric": [self.sort.metric], "plots.headline": self.plots.headline,
                 "plots.per_label": [self.plots.per_label] if self.plots.per_label else [],
                 "eligibility.metric_versions": list(self.eligibility.metric_versions)}
        for where, ids in named.items():
            unknown = [i for i in ids if i not in self.columns]
            if unknown:
                raise ValueError(f"{where} names {unknown}, which are not board columns")
        return self

    @property
    def spec_sha256(self) -> str:
        return sha256_json(self.model_dump(mode="json"))

    @property
    def headline(self) -> list[str]:
        return self.plots.headline or [self.sort.metric]


def parse_board(path: Path) -> BoardSpec:
    """Load and validate one board file; errors name the file and the field."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such board file") from None
    except yaml.YAMLError as exc:
        raise BenchError(f"{path}: not valid YAML ({exc})") from None
    try:
        spec = BoardSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top level)"
        raise BenchError(f"{path}: invalid board spec at {where}: {first['msg']}") from None
    if spec.board != path.stem:
        raise BenchError(f"{path}: 'board: {spec.board}' must equal the file name ({path.stem})")
    return spec


ROOT_ENV = "BENCH_LEADERBOARD_ROOT"


def discover_root(start: Path | None = None) -> Path:
    """The ``leaderboard/`` directory of the repository the user stands in.

    Walks up from ``start`` (default: the current directory) to the first directory holding
    ``leaderboard/boards/``. Never the installed package's own folder: a build run from a
    clone must write into that clone, and an installed wheel's copy is not anyone's working tree.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "leaderboard" / "boards").is_dir():
            return folder / "leaderboard"
        if folder.name == "leaderboard" and (folder / "boards").is_dir():
            return folder
    raise UsageError(f"no leaderboard here: neither {here} nor a parent directory holds leaderboard/boards/. "
                     f"Run the command inside a rrg-bench repository (or a copy of its leaderboard/), "
                     f"or pass --root DIR / set {ROOT_ENV}")


@dataclass(frozen=True)
class BoardLayout:
    """Paths under a leaderboard root; tests point it at a temporary copy."""

    root: Path

    @property
    def boards_dir(self) -> Path:
        return self.root / "boards"

    @property
    def changelog(self) -> Path:
        return self.root / "CHANGELOG.md"

    def board_file(self, board: str) -> Path:
        return self.boards_dir / f"{board}.yaml"

    def records_dir(self, board: str) -> Path:
        return self.root / "records" / board

    def tables_dir(self, board: str, version: int) -> Path:
        return self.root / "tables" / board / f"v{version}"

    def board_names(self) -> list[str]:
        return sorted(p.stem for p in self.boards_dir.glob("*.yaml")) if self.boards_dir.is_dir() else []

    def load(self, board: str) -> BoardSpec:
        path = self.board_file(board)
        if not path.is_file():
            known = ", ".join(self.board_names()) or "none"
            raise UsageError(f"unknown board {board!r} (no {path}); boards: {known}")
        return parse_board(path)

    def record_files(self, board: str) -> list[Path]:
        folder = self.records_dir(board)
        return sorted(folder.glob("*.json")) if folder.is_dir() else []
