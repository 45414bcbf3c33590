"""``bench run`` and ``bench score`` as stage pipelines: spec -> topology -> generate -> score -> record.

Each stage hands the next what it needs (the dataset is loaded once, the metric spec parsed
once, at the edge). The run directory stays locked from generation until its record is
published, so no other command can change the predictions in between.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrg_bench.api.dataset import Dataset
from rrg_bench.errors import BenchError, PredictionsError, UsageError
from rrg_bench.hashing import sha256_file, sha256_json
from rrg_bench.predictions import align, read_external, recover, write_ordered
from rrg_bench.progress import ProgressReporter
from rrg_bench.records.schema import ResultsRecord
from rrg_bench.run.generate import PREDICTIONS, generate
from rrg_bench.run.locks import DirLock
from rrg_bench.run.names import check_display_name, dataset_directory, directory_name
from rrg_bench.run.record import Scored, publish
from rrg_bench.run.score import ScoringOutcome, score_studies
from rrg_bench.run.spec import RunOptions, RunSpec, check_options
from rrg_bench.run.topology import detect_topology


@dataclass
class RunResult:
    run_dir: Path
    record_path: Path
    record: ResultsRecord
    created: bool  # False: this exact computation was already recorded (nothing was replaced)


def load_dataset(name: str, data_root: Path | None) -> Dataset:
    from rrg_bench.registry import registry

    dataset_cls: type[Dataset] = registry("datasets").get(name)
    return dataset_cls(data_root)


def spec_dataset(spec: RunSpec, opts: RunOptions) -> Dataset:
    """The run's dataset, with its images from an ``hf:`` source when ``--images`` names one."""
    dataset = load_dataset(spec.dataset, opts.data_root)
    if spec.images is None:
        return dataset
    from rrg_bench.datasets.hf_images import HFImages
    from rrg_bench.hf import is_hf

    if not is_hf(spec.images):
        raise UsageError(f"--images {spec.images!r}: expected hf:ID_OR_PATH[:split] (files come from --data-root)")
    return HFImages(dataset, spec.images, id_col=spec.image_id_col, image_col=spec.image_col,
                    cache_root=Path(opts.runs_dir) / ".images")


def _require_some(outcome: ScoringOutcome) -> None:
    """A record with no number in it is not a result: refuse it (the reasons name the fixes)."""
    if outcome.metrics:
        return
    why = "; ".join(f"{spec}: {reason}" for spec, reason in outcome.unavailable.items())
    raise BenchError(f"no requested metric could be computed ({why}); nothing was recorded")


def _score(studies: Sequence[Any], hypotheses: Sequence[str], metrics: Sequence[str], opts: RunOptions,
           reporter: ProgressReporter, seed: int, dataset: Dataset) -> ScoringOutcome:
    from rrg_bench.specs import build_scorers

    outcome = score_studies(studies, hypotheses, build_scorers(metrics), device=opts.device,
                            batch_size=opts.batch_size, n_boot=opts.n_boot, seed=seed, reporter=reporter,
                            dataset=dataset, workers=opts.workers)
    _require_some(outcome)
    return outcome


def run(spec: RunSpec, opts: RunOptions, reporter: ProgressReporter | None = None) -> RunResult | None:
    """Generate (resuming) then, on the main process, score and publish a record. None on other ranks."""
    from rrg_bench.registry import registry
    from rrg_bench.specs import build_scorers

    started = time.time()
    reporter = reporter or ProgressReporter(enabled=False)
    check_options(opts, spec.limit)
    build_scorers(spec.metrics)  # unknown scorers and bad parameters fail before generation
    dataset = spec_dataset(spec, opts)
    topo = detect_topology()
    with ExitStack() as hold:
        gen = generate(spec, opts, dataset, topo, reporter, hold)
        if not topo.main:
            return None
        preds = recover(gen.predictions_path)
        missing = [s.study_id for s in gen.studies if s.study_id not in preds]
        if missing:
            raise BenchError(f"{gen.predictions_path}: {len(missing)} studies still have no prediction "
                             f"(first: {missing[0]})")
        hyps = [preds[s.study_id] for s in gen.studies]
        outcome = _score(gen.studies, hyps, spec.metrics, opts, reporter, spec.seed, dataset)
        generator_block = {"name": spec.model, "origin": registry("generators").entry(spec.model).origin,
                           "eligible": gen.generator.eligible, **gen.generator.fingerprint(),
                           "display_name": gen.generator.display_name or spec.model,
                           "unofficial": gen.generator.unofficial}
        path, record, created = publish(
            gen.run_dir, generation_fp=gen.generation_fingerprint, dataset_identity=gen.dataset_identity,
            generator_block=generator_block,
            run_block={"seed": spec.seed, "batch_size": opts.batch_size, "n_boot": opts.n_boot,
                       "metrics": list(spec.metrics), "world_size": topo.world},
            scored=Scored([s.study_id for s in gen.studies], hyps, [s.reference for s in gen.studies],
                          gen.dataset_identity["n_expected"], spec.limit),
            outcome=outcome, started=started, device=opts.device,
            ineligible=[] if gen.generator.eligible
            else [f"generator {spec.model!r} is a sanity check, never eligible"])
    return RunResult(gen.run_dir, path, record, created)


def source_sha256(source: Path | str, predictions: Sequence[Any]) -> str:
    """A predictions file's sha256; for a ``hf:`` dataset, that of the (study id, report) rows read."""
    from rrg_bench.hashing import sha256_text
    from rrg_bench.hf import is_hf
    from rrg_bench.predictions import encode_line

    if is_hf(source):
        return sha256_text("".join(encode_line(p.study_id, p.report) for p in predictions))
    return sha256_file(source)


def _stage(out_dir: Path, predictions: dict[str, str], order: list[str]) -> Path:
    """Our canonical JSONL of what is scored, so the record hashes exactly that; never over another's."""
    staged = out_dir / PREDICTIONS
    if (out_dir / "spec.json").exists() and not staged.exists():
        raise UsageError(f"{out_dir} is a generation run directory; score into another --output")
    if staged.exists():
        if recover(staged) != {sid: predictions[sid] for sid in order}:
            raise PredictionsError(f"{staged}: this directory already holds other predictions; refusing to "
                                   "overwrite them — choose another --output (or --name)")
        return staged
    write_ordered(staged, predictions, order)
    return staged


def score_file(predictions_file: Path, *, dataset: str, split: str, metrics: Sequence[str], opts: RunOptions,
               id_col: str = "study_id", text_col: str = "report", allow_partial: bool = False,
               output: Path | None = None, reporter: ProgressReporter | None = None, seed: int = 0,
               name: str = "external") -> RunResult:
    """``bench score``: someone's predictions file against a dataset split (joined by study id)."""
    from rrg_bench.specs import build_scorers

    started = time.time()
    reporter = reporter or ProgressReporter(enabled=False)
    check_options(opts)
    check_display_name(name)
    build_scorers(metrics)
    ds = load_dataset(dataset, opts.data_root)
    if split not in ds.splits:
        raise UsageError(f"dataset {dataset!r} has splits {', '.join(ds.splits)}; got {split!r}")
    external = read_external(predictions_file, id_col=id_col, text_col=text_col)
    al = align(external, ds.studies(split), source=str(predictions_file), allow_partial=allow_partial)
    identity = ds.identity(split)
    file_sha = source_sha256(predictions_file, external)
    out_dir = Path(output) if output else (Path(opts.runs_dir) / dataset_directory(dataset)
                                           / directory_name(split, "--split") / directory_name(name) / file_sha[:12])
    order = [s.study_id for s in al.studies]
    with DirLock(out_dir):
        _stage(out_dir, dict(zip(order, al.hypotheses)), order)
        outcome = _score(al.studies, al.hypotheses, metrics, opts, reporter, seed, ds)
        path, record, created = publish(
            out_dir, generation_fp=sha256_json({"external": file_sha, "dataset": identity}),
            dataset_identity=identity,
            generator_block={"name": name, "origin": "file", "source": str(predictions_file),
                             "source_sha256": file_sha, "id_col": id_col, "text_col": text_col, "eligible": True},
            run_block={"seed": seed, "batch_size": opts.batch_size, "n_boot": opts.n_boot, "metrics": list(metrics),
                       "world_size": 1},
            scored=Scored(order, al.hypotheses, [s.reference for s in al.studies], identity["n_expected"], None,
                          al.missing, al.extra, al.n_null),
            outcome=outcome, started=started, device=opts.device,
            ineligible=["--allow-partial"] if (al.missing or al.extra) else [])
    return RunResult(out_dir, path, record, created)


def generate_only(spec: RunSpec, opts: RunOptions, reporter: ProgressReporter | None = None) -> Any:
    """``bench generate``: predictions only (resumable), no scoring and no record."""
    check_options(opts, spec.limit)
    dataset = spec_dataset(spec, opts)
    with ExitStack() as hold:
        return generate(spec, opts, dataset, detect_topology(), reporter or ProgressReporter(enabled=False), hold)
