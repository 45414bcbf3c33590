"""Test doubles for leaderboard / compare tests: small results records with real per-study stats.

``ToyScorer`` stands in for a registered scorer (tests pass it as ``scorer_factory``): its
per-study statistics are a 0/1 ``hit`` and a ``length`` column, and ``aggregate`` returns
``acc[conv=<c>]`` (mean hit, higher is better) and ``len[conv=<c>]`` (mean length, lower is
better). ``make_record`` writes a run directory exactly as the runner lays it out
(``results.json`` + ``scores/<spec>.parquet``) with values and bootstrap CIs computed by
``bench.stats`` from those statistics, so every number in a test is derived, not typed in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REFS = "a" * 64
DATASET = {"name": "toy/v1", "split": "test", "manifest_version": "1", "manifest_sha256": "m" * 64,
           "references_sha256": REFS, "n_expected": 0, "reference_policy": "findings"}


class ToyScorer:
    """Registered as metric ``toy`` for the tests (``toy[conv=c]``), so records recompute like real ones."""

    def __init__(self, spec: str | None = None, *, conv: str = "a") -> None:
        self.spec = spec or f"toy[conv={conv}]"
        self.conv = self.spec.split("conv=", 1)[1].rstrip("]") if "conv=" in self.spec else "a"

    def aggregate(self, stats: Any) -> dict[str, float]:
        return {f"acc[conv={self.conv}]": float(stats["hit"].mean()),
                f"len[conv={self.conv}]": float(stats["length"].mean())}


def toy_factory(spec: str) -> ToyScorer:
    return ToyScorer(spec)


def make_record(run_dir: Path, generator: str, hits: Sequence[int], lengths: Sequence[float] | None = None, *,
                conv: str = "a", metric_version: str = "1", impl: dict[str, Any] | None = None,
                eligible: bool = True, reasons: Sequence[str] = (), limit: int | None = None,
                references_sha256: str = REFS, dataset: dict[str, Any] | None = None,
                per_label: dict[str, dict[str, float]] | None = None, n_boot: int = 50,
                extra_text_column: bool = False) -> Path:
    """Write ``run_dir/results.json`` and ``run_dir/scores/toy_conv=<c>.parquet``; return the record path."""
    import pandas as pd

    from rrg_bench.records import MetricValue, PredictionsInfo, ResultsRecord, Status
    from rrg_bench.records import write_record_file as write_record
    from rrg_bench.stats import bootstrap_ci

    n = len(hits)
    lengths = list(lengths) if lengths is not None else [10.0 + (i % 3) for i in range(n)]
    ids = [f"s{i:03d}" for i in range(n)]
    stats = pd.DataFrame({"hit": [float(h) for h in hits], "length": lengths},
                         index=pd.Index(ids, name="study_id"))
    if extra_text_column:
        stats["report"] = ["some report text"] * n
    spec = f"toy[conv={conv}]"
    scores_dir = run_dir / "scores"
    scores_dir.mkdir(parents=True, exist_ok=True)
    stats_path = scores_dir / f"toy_conv={conv}.parquet"
    stats.to_parquet(stats_path)
    scorer = ToyScorer(spec)
    values = scorer.aggregate(stats)
    cis = bootstrap_ci(scorer.aggregate, stats[["hit", "length"]], n_boot=n_boot, seed=0)
    metrics = {}
    for mid, value in values.items():
        acc = mid.startswith("acc")
        metrics[mid] = MetricValue(
            value=value, ci95=cis[mid], n=n, display="Acc" if acc else "Len",
            convention=f"toy {'accuracy' if acc else 'length'} under convention {conv}",
            higher_is_better=acc, decimals=3, scorer=spec, metric_version=metric_version,
            impl=impl if impl is not None else {"toy": "1.0"}, per_label=per_label if acc else None)
    ds = dict(dataset or DATASET)
    ds["references_sha256"] = references_sha256 if dataset is None else ds.get("references_sha256")
    ds["n_expected"] = n
    fp = hashlib.sha256(json.dumps([generator, list(hits), lengths, conv, metric_version, impl,
                                    references_sha256, limit]).encode()).hexdigest()
    stats_sha = hashlib.sha256(stats_path.read_bytes()).hexdigest()
    all_reasons = list(reasons) + ([f"--limit {limit}: not the full split"] if limit else [])
    record = ResultsRecord(
        record_id=str(uuid.UUID(fp[:32])), run_fingerprint=fp, generation_fingerprint=fp[::-1],
        created_at="2026-01-01T00:00:00Z", duration_s=1.0,
        harness={"version": "0.1.0", "git_commit": "0" * 40, "git_dirty": False},
        environment={}, dataset=ds, generator={"name": generator, "eligible": eligible},
        run={"seed": 0, "n_boot": n_boot},
        predictions=PredictionsInfo(path="predictions.jsonl", sha256="p" * 64, n=n, n_empty=0, n_expected=n,
                                    coverage=1.0, limit=limit),
        metrics=metrics, scores={spec: {"path": f"scores/{stats_path.name}", "sha256": stats_sha}},
        status=Status(state="complete" if not limit else "partial", eligible=eligible and not all_reasons,
                      reasons=all_reasons),
    )
    write_record(record, run_dir / "results.json")
    return run_dir / "results.json"


BOARD_YAML = """\
board: toy_board
version: {version}
title: Toy board
dataset:
  name: toy/v1
  split: test
  manifest_version: "1"
  references_sha256: {refs}
columns:
  - acc[conv=a]
  - len[conv=a]
sort:
  metric: acc[conv=a]
eligibility:
  metric_versions: {versions}
  ignore_impl: {ignore}
plots:
  headline: ["acc[conv=a]", "len[conv=a]"]
notes:
  - A toy board for tests.
"""


def make_board_root(root: Path, *, version: int = 1, versions: str = "{}", ignore: str = "[]",
                    changelog: bool = True) -> Path:
    """A leaderboard root with one board (``toy_board``) and, optionally, its CHANGELOG line."""
    (root / "boards").mkdir(parents=True, exist_ok=True)
    (root / "boards" / "toy_board.yaml").write_text(
        BOARD_YAML.format(version=version, refs=REFS, versions=versions, ignore=ignore), encoding="utf-8")
    if changelog:
        lines = "\n".join(f"- toy_board v{v}: test version" for v in range(1, version + 1))
        (root / "CHANGELOG.md").write_text(f"# Changelog\n\n{lines}\n", encoding="utf-8")
    return root


def copy_leaderboard(src: Path, dst: Path) -> Path:
    """A writable copy of a leaderboard root (boards, records, tables, CHANGELOG)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst
