"""RadGraph F1 throughput: the radgraph package's F1RadGraph vs our cached, inference-mode adapter.

Workload: IU X-Ray test split (R2Gen annotation.json) references vs seeded random training
reports as hypotheses. Both sides load the same model directory: the real weights if
``bench.weights`` finds them, else a random model built with the test suite's builder, tiny
or with bert-base dimensions (``--random-backbone``); then the numbers measure the pipeline
around a random encoder, not the real model's annotations, and it says so.

Printed: reports/s (pairs per second) for
  * upstream   ``F1RadGraph(reward_level="all")`` (annotates every hyp and ref, autograd on),
  * ours cold  ``RadGraphScorer.score`` with an empty annotation cache (dedup + inference_mode),
  * ours warm  the same with the references already cached (the usual case: refs are shared by
               every system scored on a split),
and the ratios to upstream. It also checks that both give the same per-report rewards.

    python benchmarks/radgraph_throughput.py [--model radgraph-xl] [--model-dir DIR] [--limit N]
                                             [--random-backbone tiny|base] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
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
    path = REPO / "tests" / "metrics" / "test_radgraph_model.py"
    spec = importlib.util.spec_from_file_location("radgraph_tiny_model_builder", path)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="radgraph-xl", choices=["radgraph", "radgraph-xl", "modern-radgraph-xl"])
    parser.add_argument("--model-dir", default=None, help="local model directory (default: bench.weights lookup)")
    parser.add_argument("--limit", type=int, default=None, help="first N test studies (default: all 590)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-backbone", choices=["tiny", "base"], default="tiny",
                        help="size of the random BERT when real weights are absent (base = bert-base dims)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 gives stable numbers on a shared, loaded machine)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import contextlib
    import io

    import numpy as np
    import torch
    from radgraph import F1RadGraph

    from rrg_bench.api.scorer import ScoringContext
    from rrg_bench.cache import AnnotationCache
    from rrg_bench.errors import WeightsUnavailable
    from rrg_bench.metrics.radgraph.adapter import locate_model, radgraph_version
    from rrg_bench.metrics.radgraph.rewards import LEVELS
    from rrg_bench.metrics.radgraph.scorer import RadGraphScorer

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
            backbone = {"tiny": "a 2-layer 32-dim", "base": "a bert-base-sized (12-layer 768-dim)"}[args.random_backbone]
            kind = (f"RANDOM model (real weights not found; `bench weights fetch {args.model}`): the numbers "
                    f"measure the radgraph pipeline around {backbone} random BERT, not the real model")
        ids, hyps, refs = load_workload(args.limit, args.seed)
        n = len(ids)
        print(f"radgraph {radgraph_version()}, model {args.model}: {kind}")
        print(f"workload: IU X-Ray test, {n} pairs; distinct refs {len(set(refs))}, distinct hyps {len(set(hyps))}; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")

        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            upstream = F1RadGraph(reward_level="all", model_type=args.model,
                                  model_cache_dir=str(package_layout(model, work / "package")))
        upstream_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        mean_reward, reward_lists, _, _ = upstream(refs=refs, hyps=hyps)
        upstream_time = time.perf_counter() - t0
        del upstream

        scorer = RadGraphScorer(model=args.model, model_dir=str(model.model_dir))
        t0 = time.perf_counter()
        scorer.annotator("cpu").load()
        ours_load = time.perf_counter() - t0
        with AnnotationCache(work / "cold") as cache:
            t0 = time.perf_counter()
            cold = scorer.score(ids, hyps, refs, ScoringContext(cache=cache))
            cold_time = time.perf_counter() - t0
        with AnnotationCache(work / "warm") as cache:
            scorer.annotator("cpu").annotate_cached(cache, refs)  # references cached beforehand
            t0 = time.perf_counter()
            warm = scorer.score(ids, hyps, refs, ScoringContext(cache=cache))
            warm_time = time.perf_counter() - t0

        same = all(cold.stats[level].tolist() == list(values) for level, values in zip(LEVELS, reward_lists))
        same = same and all(cold.values[f"radgraph_f1[model={args.model},level={level}]"] == m
                            for level, m in zip(LEVELS, mean_reward))
        print(f"model load: upstream {upstream_load:.1f} s, ours {ours_load:.1f} s (not in the rates below)")
        print(f"{'':28}{'seconds':>10}{'reports/s':>12}{'vs upstream':>13}{'annotated':>11}")
        rows = [("upstream F1RadGraph", upstream_time, 2 * n),
                ("ours, cold cache", cold_time, cold.cache_misses),
                ("ours, references cached", warm_time, warm.cache_misses)]
        for name, seconds, annotated in rows:
            print(f"{name:28}{seconds:10.1f}{n / seconds:12.2f}{upstream_time / seconds:12.2f}x{annotated:11d}")
        print(f"identical per-report rewards and means: {same}")
        print(f"means (simple, partial, complete): {tuple(float(np.round(m, 6)) for m in mean_reward)}")
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
