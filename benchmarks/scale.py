"""How the cost of scoring grows with the number of studies: seconds and peak memory for 1k ... 16k studies.

Usage: python benchmarks/scale.py [--sizes 1000,2000,4000,8000,16000] [--metrics nlg,chexpert_rules]
                                  [--n-boot 1000] [--workers N]

Studies are IU X-Ray text resampled: each reference is a report drawn with replacement from all
IU X-Ray splits (seed 0), each prediction a random train report (seed 1); read from $BENCH_SHARED
or ../shared. Every size runs in a fresh child process (``--child N``) calling
``rrg_bench.score(..., metrics, n_boot)`` once, so each size pays the same one-off JVM start-ups and
its peak RSS is its own. Printed per size: wall seconds of the call; inside it, the seconds of each
scorer's ``score`` and of the bootstrap, and of the NLG parts (PTB tokeniser, METEOR, BLEU/ROUGE-L/
CIDEr-D in Python; METEOR overlaps the Python part, so the parts do not add up); peak RSS of the
Python process and of each JVM it kept (METEOR, PTB tokeniser; read from /proc before exit).
Then seconds per 1,000 studies per size and a least-squares line (fixed + per-study cost): if the
cost is linear, seconds per 1k fall towards the slope and the residuals stay small.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def studies(n: int) -> tuple[list[str], list[str]]:
    shared = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared"))
    ann = json.loads((shared / "data" / "iu_xray" / "annotation.json").read_text())
    every = [e["report"] for entries in ann.values() for e in entries]
    train = [e["report"] for e in ann["train"]]
    refs = random.Random(0).choices(every, k=n)
    hyps = random.Random(1).choices(train, k=n)
    return hyps, refs


def _timed(table: dict[str, float], label: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            table[label] += time.perf_counter() - start
    return wrapper


def _instrument(metrics: str) -> dict[str, float]:
    """Wrap each scorer's ``score``, the bootstrap and the NLG parts with timers."""
    import rrg_bench.stats
    from rrg_bench.metrics.nlg import normalisers
    from rrg_bench.metrics.nlg import scorer as nlg
    from rrg_bench.specs import build_scorers

    phases: dict[str, float] = defaultdict(float)
    for cls in {type(s) for s in build_scorers(metrics)}:
        cls.score = _timed(phases, f"score:{cls.name}", cls.score)
    rrg_bench.stats.bootstrap_ci = _timed(phases, "bootstrap", rrg_bench.stats.bootstrap_ci)
    nlg.score_sharded = _timed(phases, "nlg:meteor", nlg.score_sharded)
    nlg.coco_scores = _timed(phases, "nlg:bleu+rouge+cider", nlg.coco_scores)
    normalisers.PTBNormaliser.normalise_blocks = _timed(phases, "nlg:ptb", normalisers.PTBNormaliser.normalise_blocks)
    return phases


def _jvm_peaks() -> dict[str, float]:
    """Peak RSS (MB) of each JVM the process keeps, by program."""
    from rrg_bench.metrics.nlg.pool import POOL

    peaks: dict[str, float] = defaultdict(float)
    for key, procs in POOL._idle.items():
        for proc in procs:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
            peaks[f"jvm:{key[0]}"] += int(hwm.split()[1]) / 1024
    return dict(peaks)


def child(n: int, metrics: str, n_boot: int, workers: int | None) -> None:
    import rrg_bench

    hyps, refs = studies(n)
    phases = _instrument(metrics)
    start = time.perf_counter()
    scores = rrg_bench.score(hyps, refs, metrics=metrics, n_boot=n_boot, workers=workers)
    wall = time.perf_counter() - start
    assert not scores.unavailable, scores.unavailable
    print(json.dumps({"n": n, "wall": wall, "phases": phases, "rss_python_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_jvm_mb": _jvm_peaks(), "load": os.getloadavg()[0]}))


def report(rows: list[dict[str, Any]]) -> None:
    parts = sorted({k for r in rows for k in r["phases"]})
    jvms = sorted({k for r in rows for k in r["rss_jvm_mb"]})
    print("| studies | wall s | s per 1k | " + " | ".join(f"{p} s" for p in parts)
          + " | peak RSS python MB | " + " | ".join(f"peak RSS {j} MB" for j in jvms) + " | load |")
    print("|" + "---|" * (5 + len(parts) + len(jvms)))
    for r in rows:
        print(f"| {r['n']:,} | {r['wall']:.1f} | {1000 * r['wall'] / r['n']:.2f} | "
              + " | ".join(f"{r['phases'].get(p, 0.0):.1f}" for p in parts)
              + f" | {r['rss_python_mb']:.0f} | " + " | ".join(f"{r['rss_jvm_mb'].get(j, 0.0):.0f}" for j in jvms)
              + f" | {r['load']:.1f} |")
    xs, ys = [r["n"] for r in rows], [r["wall"] for r in rows]
    if len(rows) >= 2:
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        fixed = my - slope * mx
        worst = max(abs(y - (fixed + slope * x)) / y for x, y in zip(xs, ys))
        print(f"\nleast squares: wall = {fixed:.1f} s + {1000 * slope:.2f} s per 1k studies "
              f"(largest residual {100 * worst:.0f}% of a size's wall time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,4000,8000,16000")
    parser.add_argument("--metrics", default="nlg,chexpert_rules")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.metrics, args.n_boot, args.workers)
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--child", str(n), "--metrics", args.metrics, "--n-boot", str(args.n_boot)]
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"size {n} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"done {n:,}: {rows[-1]['wall']:.1f} s", file=sys.stderr, flush=True)
    print(f"metrics={args.metrics} n_boot={args.n_boot} workers={args.workers or 'default'} cpus={os.cpu_count()}")
    report(rows)


if __name__ == "__main__":
    main()
