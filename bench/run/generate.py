"""Stage 2 of a run: generate predictions for a split, resumably, sharded across processes.

The run directory is named by the *generation* fingerprint (dataset identity, generator
fingerprint, run seed, harness major.minor), not by the metrics: generation is the expensive,
model-dependent step, and re-scoring the same predictions with other metrics must not
regenerate them. ``--limit`` is not part of it either: studies are generated in manifest order
with per-study seeds, so a limited run is a prefix of the full run and continuing it later
yields the same bytes as a full run from scratch.

Sharding: batches are formed once over the whole split and dealt round-robin to processes, so
every batch has the same composition as in a single-process run; each process appends to its
own shard file and the main process merges them in study order — byte-identical to one process.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrg_bench.api.dataset import Dataset
from rrg_bench.api.generator import Generator, GeneratorContext, study_seed
from rrg_bench.api.types import Study
from rrg_bench.errors import BenchError, DataError, UsageError
from rrg_bench.hashing import sha256_json
from rrg_bench.predictions.jsonl import PredictionsWriter, journal_path, read_unverified, recover, write_ordered
from rrg_bench.progress import ProgressReporter
from rrg_bench.run.locks import DirLock
from rrg_bench.run.names import dataset_directory, directory_name
from rrg_bench.run.spec import RunOptions, RunSpec
from rrg_bench.run.topology import Topology

SPEC_VERSION = 1
PREDICTIONS = "predictions.jsonl"


@dataclass
class GenerationResult:
    run_dir: Path
    predictions_path: Path
    all_studies: list[Study]
    studies: list[Study]  # the (limited) studies of this run, in manifest order
    generator: Generator
    generation_fingerprint: str
    dataset_identity: dict[str, Any]
    generated_now: int


def harness_major_minor() -> str:
    from rrg_bench import __version__

    return ".".join(__version__.split(".")[:2])


def run_directory(runs_dir: Path, spec: RunSpec, fingerprint: str) -> Path:
    return (Path(runs_dir) / dataset_directory(spec.dataset) / directory_name(spec.split, "--split")
            / directory_name(spec.model, "--model") / fingerprint[:12])


def check_images(studies: Sequence[Study], generator: Generator) -> None:
    """An image generator's studies must all have their image on disk, before any work starts."""
    missing = []
    for s in studies:
        paths = [s.frontal_image] if s.frontal_image else list(s.image_paths)
        if not paths or not all(p is not None and Path(p).is_file() for p in paths):
            missing.append(f"{s.study_id} ({paths[0] if paths else 'no image listed'})")
    if missing:
        shown = ", ".join(missing[:20]) + (f" … and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise DataError(
            f"generator {generator.name!r} needs images, but {len(missing)} studies have none on disk: {shown}. "
            "Put the images under <data-root>/images/ (see `bench data verify`)"
        )


def _fingerprint(spec: RunSpec, identity: dict[str, Any], generator: Generator, dataset: Dataset,
                 studies: list[Study]) -> tuple[str, dict[str, Any]]:
    obj: dict[str, Any] = {
        "spec_version": SPEC_VERSION,
        "harness": harness_major_minor(),
        "dataset": {k: identity[k] for k in sorted(identity) if k != "n_expected"},
        "generator": generator.fingerprint(),
        "seed": spec.seed,
    }
    images_sha256 = getattr(dataset, "images_sha256", None)
    if images_sha256 is not None and generator.needs_images:  # --images hf:…: which images were seen
        obj["images"] = {"source": spec.images, "sha256": images_sha256(studies)}
    return sha256_json(obj), obj


def _write_or_check_spec(run_dir: Path, spec_obj: dict[str, Any], fresh: bool) -> None:
    """spec.json names what the predictions are; ``--fresh`` discards predictions, never records."""
    path = run_dir / "spec.json"
    text = json.dumps(spec_obj, indent=2, sort_keys=True) + "\n"
    if fresh:
        for stale in (run_dir / PREDICTIONS, journal_path(run_dir / PREDICTIONS), path):
            stale.unlink(missing_ok=True)
        shutil.rmtree(run_dir / "shards", ignore_errors=True)
    if path.exists():
        if path.read_text() != text:
            raise BenchError(f"{path}: this run directory holds a different spec; refusing to overwrite it. "
                             "Use --fresh to start over or another --runs-dir")
        return
    tmp = path.with_name(f".spec.json.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _batches(studies: list[Study], size: int) -> list[list[Study]]:
    # cut over the *whole remaining* list, so composition is independent of the number of processes
    return [studies[i:i + size] for i in range(0, len(studies), size)]


def _check_generations(batch: Sequence[Study], gens: Sequence[Any], generator: Generator) -> None:
    ids = [s.study_id for s in batch]
    got = [getattr(g, "study_id", None) for g in gens]
    if got != ids:
        raise BenchError(f"generator {generator.name!r} returned {len(gens)} generations for a batch of {len(batch)} "
                         f"(or out of order): expected {ids[:3]}…, got {got[:3]}…")
    for g in gens:
        if not isinstance(g.text, str):
            raise BenchError(f"generator {generator.name!r} returned a non-string report for study {g.study_id}")
        try:
            g.text.encode("utf-8")
        except UnicodeEncodeError:
            raise BenchError(f"generator {generator.name!r} returned a report with an invalid character "
                             f"(lone surrogate) for study {g.study_id}") from None


def _finished(run_dir: Path, topo: Topology) -> dict[str, str]:
    """Predictions already on disk: the merged file and every rank's shard (own ones repaired)."""
    done: dict[str, str] = {}
    merged = run_dir / PREDICTIONS
    if merged.exists():
        done.update(recover(merged) if topo.main else read_unverified(merged))
    shard_dir = run_dir / "shards"
    for shard in sorted(shard_dir.glob("rank*.jsonl")) if shard_dir.exists() else []:
        own = shard.name == f"rank{topo.rank}.jsonl"
        done.update(recover(shard) if own else read_unverified(shard))
    return done


def _generate_missing(spec: RunSpec, opts: RunOptions, generator: Generator, studies: list[Study],
                      run_dir: Path, topo: Topology, reporter: ProgressReporter) -> int:
    done = _finished(run_dir, topo)
    topo.barrier()  # every rank must see the same finished set before any rank appends
    todo = _batches([s for s in studies if s.study_id not in done], opts.batch_size)
    mine = [b for i, b in enumerate(todo) if i % topo.world == topo.rank]
    out_path = run_dir / PREDICTIONS if topo.world == 1 else run_dir / "shards" / f"rank{topo.rank}.jsonl"
    if not mine:
        return 0
    advance = reporter.task(f"generating {spec.model}" + (f" [rank {topo.rank}]" if topo.world > 1 else ""),
                            total=sum(len(b) for b in mine))
    generated = 0
    with PredictionsWriter(out_path) as writer:
        for batch in mine:
            gens = generator.generate(batch, [study_seed(spec.seed, s.study_id) for s in batch])
            _check_generations(batch, gens, generator)
            writer.write_batch(gens)
            generated += len(batch)
            advance(len(batch))
    return generated


def _merge(run_dir: Path, order: list[str]) -> None:
    """Fold shard files into predictions.jsonl in study order (idempotent)."""
    shard_dir = run_dir / "shards"
    shards = sorted(shard_dir.glob("rank*.jsonl")) if shard_dir.exists() else []
    merged = run_dir / PREDICTIONS
    preds = recover(merged) if merged.exists() else {}
    for shard in shards:
        preds.update(recover(shard))
    ordered = [sid for sid in order if sid in preds]
    if shards or list(preds) != ordered:
        write_ordered(merged, preds, ordered)
    for shard in shards:
        shard.unlink()
        journal_path(shard).unlink(missing_ok=True)
    if shard_dir.exists() and not any(shard_dir.iterdir()):
        shard_dir.rmdir()


def generate(spec: RunSpec, opts: RunOptions, dataset: Dataset, topo: Topology, reporter: ProgressReporter,
             hold: ExitStack) -> GenerationResult:
    """Load the generator, set it up, and fill the run directory's predictions (resuming).

    The run directory's lock is entered on ``hold``: the caller keeps it while it scores, so no
    other command can change the predictions between generation and the record."""
    from rrg_bench.registry import registry

    if spec.split not in dataset.splits:
        raise UsageError(f"dataset {spec.dataset!r} has splits {', '.join(dataset.splits)}; got {spec.split!r}")
    generator = registry("generators").get(spec.model)(**spec.model_params)
    all_studies = dataset.studies(spec.split)
    studies = all_studies[: spec.limit] if spec.limit is not None else all_studies
    identity = dataset.identity(spec.split)
    if generator.needs_images:
        check_images(studies, generator)
    generator.setup(GeneratorContext(
        dataset=spec.dataset, split=spec.split, seed=spec.seed, device=opts.device, batch_size=opts.batch_size,
        train_studies=lambda: dataset.studies("train"), cache_dir=Path(opts.runs_dir) / ".cache",
        progress=opts.progress, progress_task=reporter.task if opts.progress else None))
    # fingerprint after setup: checkpoint hashes and train-index hashes are known only then
    fingerprint, fp_obj = _fingerprint(spec, identity, generator, dataset, all_studies)
    run_dir = run_directory(opts.runs_dir, spec, fingerprint)
    hold.enter_context(DirLock(run_dir, topo.rank))
    if topo.main:
        _write_or_check_spec(run_dir, {"generation_fingerprint": fingerprint, "generation": fp_obj}, opts.fresh)
    topo.barrier()
    generated = _generate_missing(spec, opts, generator, studies, run_dir, topo, reporter)
    topo.barrier()
    if topo.main:
        _merge(run_dir, [s.study_id for s in all_studies])
    topo.barrier()
    return GenerationResult(run_dir, run_dir / PREDICTIONS, all_studies, studies, generator, fingerprint, identity,
                            generated)
