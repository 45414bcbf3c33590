"""Fixtures for the hostile-user probes: a complete record made first, and a way to prove that a
probe left it byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.bench_cli import bench_env, run_bench

FAST = ["--metrics", "chexpert_rules", "--n-boot", "20", "--no-progress"]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of every record (and the predictions) under ``root``, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ("records" in p.parts or p.name.startswith("predictions"))
            and not p.name.startswith(".lock")}


def assert_unchanged(before: dict[str, bytes], root: Path) -> None:
    after = snapshot(root)
    changed = [name for name, data in before.items() if after.get(name) != data]
    assert changed == [], f"a probe changed or removed earlier files: {changed}"


def refused(proc, *needles: str, code: int | None = None) -> str:
    """A clean refusal: non-zero exit, no traceback, exactly one ``error:`` line holding ``needles``."""
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    if code is not None:
        assert proc.returncode == code, text
    assert "Traceback" not in text, text
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def accepted(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stdout


def record_paths(run_root: Path) -> list[Path]:
    return sorted(run_root.rglob("records/*/results.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def complete_run(tmp_path: Path) -> Path:
    """``bench run`` of random_report on the demo test split, scored with chexpert_rules: complete."""
    runs = tmp_path / "runs"
    accepted(run_bench(["run", "--model", "random_report", "--runs-dir", str(runs), *FAST]))
    (record,) = record_paths(runs)
    assert load(record)["status"]["state"] == "complete"
    return runs


@pytest.fixture
def demo_predictions(tmp_path: Path) -> Path:
    """A well-formed predictions file for the demo test split (one constant report per study)."""
    from rrg_bench.registry import registry

    ids = [s.study_id for s in registry("datasets").get("demo")().studies("test")]
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps({"study_id": i, "report": "no acute findings."}) + "\n" for i in ids))
    return path


@pytest.fixture
def env() -> dict[str, str]:
    return bench_env()
