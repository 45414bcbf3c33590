"""generate -> score -> record, with resume, locking and process sharding.

The run directory is named by the *generation* fingerprint (dataset identity, generator
fingerprint, run seed, harness major.minor), not by the metric set: generation is the
expensive, model-dependent step, and re-scoring the same predictions with another metric
suite must not regenerate them. The full run fingerprint (generation + metric fingerprints)
is in ``results.json``. ``--limit`` is not part of the fingerprint either: studies are
generated in manifest order with per-study seeds, so a limited run is a prefix of the full
run and continuing it later yields the same bytes as a full run from scratch.

Sharding (``accelerate launch -m rrg_bench run ...``): batches are formed once over the whole
split and dealt round-robin to processes, so every batch has the same composition as in a
single-process run; each process appends to its own shard file and the main process merges
them in study order. Hence the merged file is byte-identical to a single-process run.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from rrg_bench import RECORD_SCHEMA
from rrg_bench.api.dataset import Dataset
from rrg_bench.environment import environment_info, harness_info
from rrg_bench.errors import BenchError, DataError, RunLocked, UsageError, WeightsUnavailable
from rrg_bench.hashing import sha256_file, sha256_json
from rrg_bench.api.generator import Generator, GeneratorContext, study_seed
from rrg_bench.predictions import PredictionsWriter, align, read_external, recover, write_ordered
from rrg_bench.progress import ProgressReporter
from rrg_bench.records import MetricValue, PredictionsInfo, ResultsRecord, Status, write_record
from rrg_bench.registry import registry
from rrg_bench.specs import build_scorers, expand_metrics
from rrg_bench.api.types import Study

SPEC_VERSION = 1


@dataclass
class RunSpec:
    """Everything a user chooses for ``bench run``; operational knobs live in RunOptions."""

    dataset: str
    split: str
    model: str
    model_params: dict[str, str] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: ["default"])
    seed: int = 0
    limit: int | None = None


@dataclass
class RunOptions:
    runs_dir: Path = Path("runs")
    data_root: Path | None = None
    device: str = "cpu"
    batch_size: int = 8
    n_boot: int = 1000
    progress: bool = True
    fresh: bool = False


# ---------------------------------------------------------------- resolution helpers


def load_dataset(name: str, data_root: Path | None) -> Dataset:
    cls = registry("datasets").get(name)
    return cls(data_root)


def load_generator(name: str, params: dict[str, str]) -> Generator:
    cls = registry("generators").get(name)
    return cls(**params)


def expand_metric_specs(specs: Sequence[str]) -> list[str]:
    return expand_metrics(specs)


def load_scorers(specs: Sequence[str]) -> list[Any]:
    return build_scorers(specs)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _harness_major_minor() -> str:
    from rrg_bench import __version__

    return ".".join(__version__.split(".")[:2])


# ---------------------------------------------------------------- process topology


@dataclass
class Topology:
    rank: int = 0
    world: int = 1
    _dist: Any = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self._dist is not None:
            self._dist.barrier()


def detect_topology() -> Topology:
    """Single process unless started by a distributed launcher (WORLD_SIZE > 1).

    Works under ``torchrun`` and ``accelerate launch --multi_gpu`` (which uses torchrun), on GPU
    and CPU machines alike: sharding needs only ranks and barriers, so a gloo process group is
    enough and no accelerator is assumed. (``accelerate launch --cpu`` starts one process only.)
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Topology()
    import torch.distributed as dist  # only multi-process runs pay for this import

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return Topology(dist.get_rank(), dist.get_world_size(), dist)


# ---------------------------------------------------------------- locking


class RunLock:
    """Exclusive lock on a run directory (per process rank), naming the holder when taken."""

    def __init__(self, run_dir: Path, rank: int = 0) -> None:
        from filelock import FileLock

        self.path = run_dir / f".lock.rank{rank}"
        self.info = run_dir / f".lock.rank{rank}.owner"
        self._lock = FileLock(str(self.path))

    def __enter__(self) -> "RunLock":
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            owner = self.info.read_text().strip() if self.info.exists() else "unknown process"
            raise RunLocked(
                f"{self.path.parent}: another bench process ({owner}) is writing this run; "
                "wait for it to finish or stop it"
            ) from None
        self.info.write_text(f"pid {os.getpid()} on {os.uname().nodename}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        self.info.unlink(missing_ok=True)
        self._lock.release()


# ---------------------------------------------------------------- generation


@dataclass
class GenerationResult:
    run_dir: Path
    predictions_path: Path
    studies: list[Study]
    generator: Generator
    generation_fingerprint: str
    dataset_identity: dict[str, Any]
    generated_now: int


def _select(studies: list[Study], limit: int | None) -> list[Study]:
    if limit is not None:
        if limit <= 0:
            raise UsageError("--limit must be a positive number of studies")
        return studies[:limit]
    return studies


def _check_images(studies: Sequence[Study], generator: Generator) -> None:
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


def generate(spec: RunSpec, opts: RunOptions, reporter: ProgressReporter | None = None,
             topo: Topology | None = None) -> GenerationResult:
    topo = topo or detect_topology()
    reporter = reporter or ProgressReporter(enabled=False)
    dataset = load_dataset(spec.dataset, opts.data_root)
    if spec.split not in dataset.splits:
        raise UsageError(f"dataset {spec.dataset!r} has splits {', '.join(dataset.splits)}; got {spec.split!r}")
    generator = load_generator(spec.model, spec.model_params)
    all_studies = dataset.studies(spec.split)
    studies = _select(all_studies, spec.limit)
    identity = dataset.identity(spec.split)

    ctx = GeneratorContext(
        dataset=spec.dataset, split=spec.split, seed=spec.seed, device=opts.device,
        batch_size=opts.batch_size, train_studies=lambda: dataset.studies("train"),
        cache_dir=Path(opts.runs_dir) / ".cache", progress=opts.progress,
    )
    if generator.needs_images:
        _check_images(studies, generator)
    # setup before fingerprinting: checkpoint hashes and train-index hashes are known only then
    generator.setup(ctx)
    gen_fp_obj = {
        "spec_version": SPEC_VERSION,
        "harness": _harness_major_minor(),
        "dataset": {k: identity[k] for k in sorted(identity) if k not in {"n_expected"}},
        "generator": generator.fingerprint(),
        "seed": spec.seed,
    }
    gen_fp = sha256_json(gen_fp_obj)
    run_dir = Path(opts.runs_dir) / _safe(spec.dataset) / spec.split / _safe(spec.model) / gen_fp[:12]
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "spec.json"
    spec_obj = {"generation_fingerprint": gen_fp, "generation": gen_fp_obj}
    if topo.main:
        _write_or_check_spec(spec_path, spec_obj, opts.fresh, run_dir)
    topo.barrier()

    predictions_path = run_dir / "predictions.jsonl"
    shard_dir = run_dir / "shards"
    generated_now = 0
    with RunLock(run_dir, topo.rank):
        done: dict[str, str] = {}
        if predictions_path.exists() and topo.main:
            done.update(recover(predictions_path))
        elif predictions_path.exists():
            done.update(recover_readonly(predictions_path))
        for shard in sorted(shard_dir.glob("rank*.jsonl")) if shard_dir.exists() else []:
            if shard.name == f"rank{topo.rank}.jsonl":
                done.update(recover(shard))
            else:
                done.update(recover_readonly(shard))
        # every rank must see the same finished set before any rank appends, or the deal differs
        topo.barrier()
        todo_batches = _batches([s for s in studies if s.study_id not in done], opts.batch_size)
        mine = [b for i, b in enumerate(todo_batches) if i % topo.world == topo.rank]
        out_path = predictions_path if topo.world == 1 else shard_dir / f"rank{topo.rank}.jsonl"
        total_mine = sum(len(b) for b in mine)
        if mine:
            advance = reporter.task(f"generating {spec.model}" + (f" [rank {topo.rank}]" if topo.world > 1 else ""),
                                    total=total_mine)
            with PredictionsWriter(out_path) as writer:
                for batch in mine:
                    seeds = [study_seed(spec.seed, s.study_id) for s in batch]
                    gens = generator.generate(batch, seeds)
                    _check_generations(batch, gens, generator)
                    writer.write_batch(gens)
                    generated_now += len(batch)
                    advance(len(batch))
    topo.barrier()
    if topo.main:
        _merge(run_dir, predictions_path, shard_dir, [s.study_id for s in all_studies])
    topo.barrier()
    return GenerationResult(run_dir, predictions_path, studies, generator, gen_fp, identity, generated_now)


def recover_readonly(path: Path) -> dict[str, str]:
    """Read another process's file without repairing it (it may still be appending)."""
    import json

    out: dict[str, str] = {}
    for raw in path.read_bytes().split(b"\n")[:-1]:
        try:
            obj = json.loads(raw)
            out[obj["study_id"]] = obj["report"]
        except (ValueError, KeyError, TypeError):
            break
    return out


def _batches(studies: list[Study], size: int) -> list[list[Study]]:
    if size <= 0:
        raise UsageError("--batch-size must be positive")
    # batches are cut over the *whole remaining* list, so composition is independent of world size
    return [studies[i:i + size] for i in range(0, len(studies), size)]


def _check_generations(batch: Sequence[Study], gens: Sequence[Any], generator: Generator) -> None:
    ids = [s.study_id for s in batch]
    got = [getattr(g, "study_id", None) for g in gens]
    if got != ids:
        raise BenchError(
            f"generator {generator.name!r} returned {len(gens)} generations for a batch of {len(batch)} "
            f"(or out of order): expected {ids[:3]}…, got {got[:3]}…"
        )
    for g in gens:
        if not isinstance(g.text, str):
            raise BenchError(f"generator {generator.name!r} returned a non-string report for study {g.study_id}")


def _write_or_check_spec(path: Path, spec_obj: dict[str, Any], fresh: bool, run_dir: Path) -> None:
    import json

    text = json.dumps(spec_obj, indent=2, sort_keys=True) + "\n"
    if path.exists() and fresh:
        import shutil

        shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
    if path.exists():
        if path.read_text() != text:
            raise BenchError(
                f"{path}: this run directory holds a different spec; refusing to overwrite it. "
                "Use --fresh to start over or another --runs-dir"
            )
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _merge(run_dir: Path, predictions_path: Path, shard_dir: Path, order: list[str]) -> None:
    """Fold shard files into predictions.jsonl in study order (idempotent)."""
    shards = sorted(shard_dir.glob("rank*.jsonl")) if shard_dir.exists() else []
    preds = recover(predictions_path) if predictions_path.exists() else {}
    for shard in shards:
        preds.update(recover(shard))
    ordered = [sid for sid in order if sid in preds]
    current = list(recover(predictions_path)) if predictions_path.exists() else []
    if shards or current != ordered:
        write_ordered(predictions_path, preds, ordered)
    for shard in shards:
        shard.unlink()
    if shard_dir.exists() and not any(shard_dir.iterdir()):
        shard_dir.rmdir()


# ---------------------------------------------------------------- scoring


@dataclass
class ScoringOutcome:
    metrics: dict[str, MetricValue]
    unavailable: dict[str, str]
    scores: dict[str, dict[str, str]]
    cache: dict[str, dict[str, int]]
    fingerprints: dict[str, Any]
    warnings: list[str]


def score(studies: Sequence[Study], hypotheses: Sequence[str], metric_specs: Sequence[str], out_dir: Path,
          opts: RunOptions, reporter: ProgressReporter | None = None, seed: int = 0,
          dataset: Dataset | None = None) -> ScoringOutcome:
    from rrg_bench.api.scorer import ScoringContext

    from rrg_bench.stats import bootstrap_ci

    reporter = reporter or ProgressReporter(enabled=False)
    cache = _open_cache()
    ctx = ScoringContext(device=opts.device, batch_size=opts.batch_size, cache=cache, progress=reporter.task,
                         dataset=dataset.name if dataset is not None else None,
                         train_references=_train_references(dataset))
    ids = [s.study_id for s in studies]
    refs = [s.reference for s in studies]
    metrics: dict[str, MetricValue] = {}
    unavailable: dict[str, str] = {}
    scores: dict[str, dict[str, str]] = {}
    cache_info: dict[str, dict[str, int]] = {}
    fps: dict[str, Any] = {}
    warnings: list[str] = []
    scores_dir = out_dir / "scores"
    for scorer in load_scorers(metric_specs):
        reason = scorer.unavailable_reason()
        if reason is None:
            try:
                result = scorer.score(ids, list(hypotheses), refs, ctx)
            except WeightsUnavailable as exc:
                reason = str(exc)
        if reason is not None:
            unavailable[scorer.spec] = reason
            continue
        fps[scorer.spec] = scorer.fingerprint()
        scores_dir.mkdir(parents=True, exist_ok=True)
        stats_path = scores_dir / f"{_safe(scorer.spec)}.parquet"
        result.stats.to_parquet(stats_path)
        scores[scorer.spec] = {"path": str(stats_path.relative_to(out_dir)), "sha256": sha256_file(stats_path)}
        cache_info[scorer.spec] = {"hits": result.cache_hits, "misses": result.cache_misses}
        cis = bootstrap_ci(scorer.aggregate, result.stats, n_boot=opts.n_boot, seed=seed) if opts.n_boot else {}
        impl = scorer.impl()
        warnings.extend(f"{scorer.spec}: {n}" for n in result.notes)
        for col in scorer.columns():
            if col.id not in result.values:
                continue
            metrics[col.id] = MetricValue(
                value=float(result.values[col.id]), ci95=cis.get(col.id), n=len(ids), display=col.display,
                convention=col.convention, higher_is_better=col.higher_is_better, decimals=col.decimals,
                scorer=scorer.spec, metric_version=scorer.version, ci_method=result.ci_method, impl=impl,
                per_label=result.per_label,
            )
    return ScoringOutcome(metrics, unavailable, scores, cache_info, fps, warnings)


def _train_references(dataset: Dataset | None) -> Callable[[], list[str]] | None:
    """The dataset's train references, loaded only if a scorer asks (most never do)."""
    if dataset is None or "train" not in dataset.splits:
        return None

    @functools.lru_cache(maxsize=1)
    def load() -> list[str]:
        return [s.reference for s in dataset.studies("train")]

    return load


def _open_cache() -> Any:
    try:
        from rrg_bench.cache import AnnotationCache
    except ImportError:  # the cache module is optional for text-only metric suites
        return None
    return AnnotationCache()


# ---------------------------------------------------------------- records


def _predictions_info(path: Path, hyps: Sequence[str], n_expected: int, limit: int | None,
                      missing: Sequence[str] = (), extra: Sequence[str] = ()) -> PredictionsInfo:
    return PredictionsInfo(
        path=path.name, sha256=sha256_file(path), n=len(hyps), n_empty=sum(1 for h in hyps if not h.strip()),
        n_expected=n_expected, coverage=len(hyps) / n_expected if n_expected else 0.0, limit=limit,
        missing=list(missing), extra=list(extra),
    )


def build_record(*, generation_fp: str, dataset_identity: dict[str, Any], generator_block: dict[str, Any],
                 run_block: dict[str, Any], predictions: PredictionsInfo, outcome: ScoringOutcome,
                 started: float, device: str, ineligible: Sequence[str] = ()) -> ResultsRecord:
    reasons = list(ineligible)
    if predictions.limit is not None:
        reasons.append(f"--limit {predictions.limit}: not the full split")
    if predictions.coverage < 1.0 and predictions.limit is None:
        reasons.append(f"coverage {predictions.coverage:.4f} < 1 ({len(predictions.missing)} studies missing)")
    if predictions.extra:
        reasons.append(f"{len(predictions.extra)} predictions for ids outside the split were ignored")
    complete = predictions.coverage >= 1.0 and predictions.limit is None and not predictions.extra
    run_fp = sha256_json({"generation": generation_fp, "metrics": outcome.fingerprints,
                          "n_boot": run_block.get("n_boot"), "limit": predictions.limit})
    return ResultsRecord(
        schema_version=RECORD_SCHEMA, record_id=str(uuid.uuid4()), run_fingerprint=run_fp,
        generation_fingerprint=generation_fp, created_at=_now(), duration_s=round(time.time() - started, 3),
        harness=harness_info(), environment=environment_info(device), dataset=dataset_identity,
        generator=generator_block, run=run_block, predictions=predictions, metrics=outcome.metrics,
        unavailable=outcome.unavailable, scores=outcome.scores, cache=outcome.cache,
        status=Status(state="complete" if complete else "partial", eligible=not reasons, reasons=reasons,
                      warnings=outcome.warnings),
    )


def run(spec: RunSpec, opts: RunOptions, reporter: ProgressReporter | None = None) -> tuple[Path, ResultsRecord | None]:
    """``bench run``: generate (resuming) then, on the main process, score and write results.json."""
    started = time.time()
    topo = detect_topology()
    gen = generate(spec, opts, reporter, topo)
    if not topo.main:
        return gen.run_dir, None
    preds = recover(gen.predictions_path)
    missing = [s.study_id for s in gen.studies if s.study_id not in preds]
    if missing:
        raise BenchError(f"{gen.predictions_path}: {len(missing)} studies still have no prediction (first: {missing[0]})")
    hyps = [preds[s.study_id] for s in gen.studies]
    outcome = score(gen.studies, hyps, spec.metrics, gen.run_dir, opts, reporter, seed=spec.seed,
                    dataset=load_dataset(spec.dataset, opts.data_root))
    # a limited run scores a prefix; the predictions file may hold more (a previous full run)
    info = _predictions_info(gen.predictions_path, hyps, gen.dataset_identity["n_expected"], spec.limit)
    generator_block = {
        "name": spec.model, "origin": registry("generators").entry(spec.model).origin,
        "eligible": gen.generator.eligible, **gen.generator.fingerprint(),
    }
    ineligible = [] if gen.generator.eligible else [f"generator {spec.model!r} is a sanity check, never eligible"]
    record = build_record(
        generation_fp=gen.generation_fingerprint, dataset_identity=gen.dataset_identity,
        generator_block=generator_block,
        run_block={"seed": spec.seed, "batch_size": opts.batch_size, "n_boot": opts.n_boot,
                   "metrics": expand_metric_specs(spec.metrics), "world_size": topo.world},
        predictions=info, outcome=outcome, started=started, device=opts.device, ineligible=ineligible,
    )
    write_record(record, gen.run_dir / "results.json")
    return gen.run_dir, record


def score_file(predictions_file: Path, *, dataset: str, split: str, metrics: Sequence[str], opts: RunOptions,
               id_col: str = "study_id", text_col: str = "report", allow_partial: bool = False,
               output: Path | None = None, reporter: ProgressReporter | None = None,
               seed: int = 0, name: str = "external") -> tuple[Path, ResultsRecord]:
    """``bench score``: someone's predictions file against a manifest split."""
    started = time.time()
    ds = load_dataset(dataset, opts.data_root)
    if split not in ds.splits:
        raise UsageError(f"dataset {dataset!r} has splits {', '.join(ds.splits)}; got {split!r}")
    preds = read_external(predictions_file, id_col=id_col, text_col=text_col)
    studies = ds.studies(split)
    al = align(preds, studies, source=str(predictions_file), allow_partial=allow_partial)
    identity = ds.identity(split)
    file_sha = sha256_file(predictions_file)
    out_dir = Path(output) if output else Path(opts.runs_dir) / _safe(dataset) / split / _safe(name) / file_sha[:12]
    out_dir.mkdir(parents=True, exist_ok=True)
    # stage the aligned predictions in our canonical JSONL so the record hashes what was scored
    staged = out_dir / "predictions.jsonl"
    write_ordered(staged, dict(zip([s.study_id for s in al.studies], al.hypotheses)),
                  [s.study_id for s in al.studies])
    outcome = score(al.studies, al.hypotheses, metrics, out_dir, opts, reporter, seed=seed, dataset=ds)
    info = _predictions_info(staged, al.hypotheses, identity["n_expected"], None, al.missing, al.extra)
    gen_fp = sha256_json({"external": file_sha, "dataset": identity})
    record = build_record(
        generation_fp=gen_fp, dataset_identity=identity,
        generator_block={"name": name, "origin": "file", "source": str(predictions_file),
                         "source_sha256": file_sha, "id_col": id_col, "text_col": text_col, "eligible": True},
        run_block={"seed": seed, "batch_size": opts.batch_size, "n_boot": opts.n_boot,
                   "metrics": expand_metric_specs(metrics), "world_size": 1},
        predictions=info, outcome=outcome, started=started, device=opts.device,
        ineligible=["--allow-partial"] if (al.missing or al.extra) else [],
    )
    write_record(record, out_dir / "results.json")
    return out_dir, record


__all__ = ["RunSpec", "RunOptions", "generate", "score", "run", "score_file"]
