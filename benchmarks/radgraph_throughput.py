"""RadGraph F1 throughput: the radgraph package's F1RadGraph vs our batched, cached adapter.

Workload: IU X-Ray test split (R2Gen annotation.json) references vs seeded random training
reports as hypotheses. Both sides load the same model directory: the real weights if
``bench.weights`` finds them, else a random model of the real classes built with the test
suite's builder (tests/metrics/_radgraph_doubles.py), tiny or with the real backbones'
dimensions (``--random-backbone base``: bert-base for radgraph / radgraph-xl, ModernBERT-base
for modern-radgraph-xl); then the numbers measure the pipeline around a random encoder, not the
real model's annotations, and it says so.

Printed, all measured in this one process: seconds and reports/s (pairs per second) for
  * upstream   ``F1RadGraph(reward_level="all")`` (annotates every hyp and ref one report per
               forward pass, autograd on),
  * ours cold  ``RadGraphScorer.score`` with an empty annotation cache (dedup, inference_mode,
               batches of equal sub-word length, ``--batch-size``),
  * ours warm  the same with the references already cached (the usual case: refs are shared by
               every system scored on a split),
the ratios to upstream, and whether the per-report rewards and every annotation are identical.
The machine's load average is printed before and after each phase (timings on a shared
machine are only comparable within one run). Exit status 1 if anything differs.

    python benchmarks/radgraph_throughput.py [--model radgraph-xl] [--model-dir DIR] [--limit N]
        [--random-backbone tiny|base] [--threads N] [--device cpu|cuda[:N]] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared")).resolve()


def load_workload(limit: int | None, seed: int) -> tuple[list[str], list[str], list[str]]:
    split = json.loads((shared_root() / "data" / "iu_xray" / "annotation.json").read_text(encoding="utf-8"))
    test = split["test"][:limit] if limit else split["test"]
    train_reports = [s["report"] for s in split["train"]]
    rng = random.Random(seed)
    return [s["id"] for s in test], [rng.choice(train_reports) for _ in test], [s["report"] for s in test]


def random_model_dir(model_type: str, root: Path, size: str) -> Path:
    path = REPO / "tests" / "metrics" / "_radgraph_doubles.py"
    spec = importlib.util.spec_from_file_location("radgraph_doubles", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.build_tiny_radgraph_model(root, model_type, backbone_size=size)


def package_layout(model, root: Path) -> Path:
    """``root/<model_type>/`` as F1RadGraph reads it, with the backbone named by local path."""
    from rrg_bench.metrics.radgraph.adapter import _staged_config, check_model_dir

    target = root / model.model_type
    target.mkdir(parents=True)
    config = _staged_config(check_model_dir(model.model_type, model.model_dir), model.backbone_dir)
    (target / "config.json").write_text(json.dumps(config))
    shutil.copytree(model.model_dir / "vocabulary", target / "vocabulary", ignore=shutil.ignore_patterns(".lock"))
    (target / "weights.th").symlink_to(model.weights.resolve())
    return root


def machine() -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def load() -> str:
    return "load {:.2f}/{:.2f}/{:.2f}".format(*os.getloadavg())


class TransformerClock:
    """Seconds spent inside the backbone (the Hugging Face model) of a loaded radgraph model: the profile."""

    def __init__(self, dygie) -> None:
        self.seconds = 0.0
        self.calls = 0
        backbone = dygie._embedder._token_embedders["bert"]._matched_embedder.transformer_model
        backbone.register_forward_pre_hook(self._start)
        backbone.register_forward_hook(self._stop)

    def _start(self, *_):
        self._t0 = time.perf_counter()

    def _stop(self, *_):
        self.seconds += time.perf_counter() - self._t0
        self.calls += 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="radgraph-xl", choices=["radgraph", "radgraph-xl", "modern-radgraph-xl"])
    parser.add_argument("--model-dir", default=None, help="local model directory (default: bench.weights lookup)")
    parser.add_argument("--limit", type=int, default=None, help="first N test studies (default: all 590)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-backbone", choices=["tiny", "base"], default="tiny",
                        help="size of the random backbone when real weights are absent (base = the real dimensions)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both implementations)")
    parser.add_argument("--batch-size", type=int, default=16, help="our reports per forward pass (at most)")
    return parser.parse_args()


def run_upstream(model, args, work: Path, refs: list[str], hyps: list[str]):
    from radgraph import F1RadGraph

    from rrg_bench.metrics.radgraph.adapter import _device_index

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        upstream = F1RadGraph(reward_level="all", model_type=args.model, cuda=_device_index(args.device),
                              model_cache_dir=str(package_layout(model, work / "package")))
    loaded = time.perf_counter() - t0
    print(f"[upstream] model loaded in {loaded:.1f} s; {load()}", flush=True)
    clock = TransformerClock(upstream.radgraph.model)
    t0 = time.perf_counter()
    output = upstream(refs=refs, hyps=hyps)
    seconds = time.perf_counter() - t0
    print(f"[upstream] {seconds:.1f} s, of which {clock.seconds:.1f} s in {clock.calls} backbone forward passes; "
          f"{load()}", flush=True)
    return loaded, seconds, output


def run_ours(model, args, work: Path, ids: list[str], hyps: list[str], refs: list[str]):
    from rrg_bench.api.scorer import ScoringContext
    from rrg_bench.cache import AnnotationCache
    from rrg_bench.metrics.radgraph.scorer import RadGraphScorer

    scorer = RadGraphScorer(model=args.model, model_dir=str(model.model_dir))
    annotator = scorer.annotator(args.device)
    t0 = time.perf_counter()
    clock = TransformerClock(annotator.load().model)
    loaded = time.perf_counter() - t0
    ctx = {"device": args.device, "batch_size": args.batch_size}
    with AnnotationCache(work / "cold") as cache:
        t0 = time.perf_counter()
        cold = scorer.score(ids, hyps, refs, ScoringContext(cache=cache, **ctx))
        cold_time = time.perf_counter() - t0
        print(f"[ours cold] {cold_time:.1f} s, of which {clock.seconds:.1f} s in {clock.calls} backbone forward "
              f"passes; {load()}", flush=True)
        annotations = {side: annotator.annotate_cached(cache, texts)[0]
                       for side, texts in (("hyps", hyps), ("refs", refs))}
    with AnnotationCache(work / "warm") as cache:
        annotator.annotate_cached(cache, refs, batch_size=args.batch_size)  # references cached beforehand
        t0 = time.perf_counter()
        warm = scorer.score(ids, hyps, refs, ScoringContext(cache=cache, **ctx))
        warm_time = time.perf_counter() - t0
        print(f"[ours warm] {warm_time:.1f} s; {load()}", flush=True)
    return loaded, (cold, cold_time), (warm, warm_time), annotations


def identical(args, upstream_output, cold, warm, annotations, hyps: list[str], refs: list[str]) -> dict[str, bool]:
    import json as _json

    from rrg_bench.metrics.radgraph.rewards import LEVELS

    mean_reward, reward_lists, hyp_annotations, ref_annotations = upstream_output
    kept = [i for i, (h, r) in enumerate(zip(hyps, refs)) if h and r]
    ours_hyp = [annotations["hyps"][i] for i in kept]
    ours_ref = [annotations["refs"][i] for i in kept]
    # the package's annotations, JSON round-tripped as every cached value is
    theirs_hyp, theirs_ref = _json.loads(_json.dumps(hyp_annotations)), _json.loads(_json.dumps(ref_annotations))
    checks = {"annotations": ours_hyp == theirs_hyp and ours_ref == theirs_ref}
    for name, result in (("rewards cold", cold), ("rewards warm", warm)):
        checks[name] = (all(result.stats[level].tolist() == list(values) for level, values in zip(LEVELS, reward_lists))
                        and all(result.values[f"radgraph_f1[model={args.model},level={level}]"] == m
                                for level, m in zip(LEVELS, mean_reward)))
    return checks


def main() -> int:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"SKIPPED: --device {args.device} asked for, but torch {torch.__version__} sees no CUDA device here")
        return 0
    from rrg_bench.errors import WeightsUnavailable
    from rrg_bench.metrics.radgraph.adapter import locate_model, radgraph_version

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="radgraph-bench-"))
    os.environ.setdefault("BENCH_CACHE_DIR", str(work / "bench-cache"))
    try:
        try:
            model = locate_model(args.model, args.model_dir)
            kind = f"REAL weights at {model.model_dir}"
        except WeightsUnavailable:
            model = locate_model(args.model, random_model_dir(args.model, work / "random", args.random_backbone))
            backbone = "ModernBERT" if args.model == "modern-radgraph-xl" else "BERT"
            size = {"tiny": "a tiny", "base": "a base-sized"}[args.random_backbone]
            kind = (f"RANDOM model (real weights not found; `bench weights fetch {args.model}`): the numbers "
                    f"measure the radgraph pipeline around {size} random {backbone}, not the real model")
        ids, hyps, refs = load_workload(args.limit, args.seed)
        n = len(ids)
        print(f"radgraph {radgraph_version()}, model {args.model}: {kind}")
        print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads, device "
              f"{args.device}, our batch size {args.batch_size}; {load()}")
        print(f"workload: IU X-Ray test, {n} pairs; distinct refs {len(set(refs))}, distinct hyps {len(set(hyps))}, "
              f"distinct texts {len(set(refs) | set(hyps))}", flush=True)

        upstream_load, upstream_time, upstream_output = run_upstream(model, args, work, refs, hyps)
        ours_load, (cold, cold_time), (warm, warm_time), annotations = run_ours(model, args, work, ids, hyps, refs)
        checks = identical(args, upstream_output, cold, warm, annotations, hyps, refs)

        print(f"model load: upstream {upstream_load:.1f} s, ours {ours_load:.1f} s (not in the rates below)")
        print(f"{'':28}{'seconds':>10}{'reports/s':>12}{'vs upstream':>13}{'annotated':>11}")
        rows = [("upstream F1RadGraph", upstream_time, 2 * n),
                ("ours, cold cache", cold_time, cold.cache_misses),
                ("ours, references cached", warm_time, warm.cache_misses)]
        for name, seconds, annotated in rows:
            print(f"{name:28}{seconds:10.1f}{n / seconds:12.2f}{upstream_time / seconds:12.2f}x{annotated:11d}")
        print("identical: " + ", ".join(f"{name} {ok}" for name, ok in checks.items()))
        print(f"means (simple, partial, complete): {tuple(round(float(m), 6) for m in upstream_output[0])}")
        return 0 if all(checks.values()) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
