"""Throughput of the `nlg` scorer against pycocoevalcap called directly (COCOEvalCap style).

Usage: python benchmarks/nlg_throughput.py [--n 3000] [--tok ptb|r2gen]

Predictions are IU X-Ray training reports paired with test references (cycled to reach --n),
read from $BENCH_SHARED or ../shared. Prints seconds and reports/s for both, their ratio,
and the time of a 1,000-resample bootstrap over the scorer's per-study statistics.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_pairs(n: int) -> tuple[list[str], list[str], list[str]]:
    shared = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared"))
    ann = json.loads((shared / "data" / "iu_xray" / "annotation.json").read_text())
    refs = [e["report"] for e in ann["test"]]
    hyps = [e["report"] for e in ann["train"]]
    ids = [f"s{i:06d}" for i in range(n)]
    return ids, [hyps[i % len(hyps)] for i in range(n)], [refs[i % len(refs)] for i in range(n)]


def upstream(hyps: list[str], refs: list[str], tok: str) -> float:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from rrg_bench.metrics.nlg.normalisers import R2GenCleanNormaliser

    start = time.perf_counter()
    if tok == "ptb":
        gts = PTBTokenizer().tokenize({i: [{"caption": r}] for i, r in enumerate(refs)})
        res = PTBTokenizer().tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
    else:
        clean = R2GenCleanNormaliser().clean
        gts = {i: [clean(r)] for i, r in enumerate(refs)}
        res = {i: [clean(h)] for i, h in enumerate(hyps)}
    Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    meteor.compute_score(gts, res)
    Rouge().compute_score(gts, res)
    Cider().compute_score(gts, res)
    elapsed = time.perf_counter() - start
    meteor.meteor_p.kill()
    meteor.meteor_p.wait()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=590)
    parser.add_argument("--tok", choices=["ptb", "r2gen"], default="ptb")
    args = parser.parse_args()

    from rrg_bench.api.scorer import ScoringContext
    from rrg_bench.metrics.nlg import NLGScorer
    from rrg_bench.stats import bootstrap_ci

    ids, hyps, refs = load_pairs(args.n)
    scorer = NLGScorer(tok=args.tok)
    start = time.perf_counter()
    result = scorer.score(ids, hyps, refs, ScoringContext())
    ours = time.perf_counter() - start
    theirs = upstream(hyps, refs, args.tok)
    start = time.perf_counter()
    bootstrap_ci(scorer.aggregate, result.stats, n_boot=1000, seed=0)
    boot = time.perf_counter() - start

    print(f"n={args.n} tok={args.tok}")
    print(f"  rrg-bench nlg     {ours:7.2f} s  {args.n / ours:8.0f} reports/s")
    print(f"  pycocoevalcap     {theirs:7.2f} s  {args.n / theirs:8.0f} reports/s")
    print(f"  ratio (upstream / ours) {theirs / ours:.2f}")
    print(f"  bootstrap 1000 resamples {boot:.2f} s")


if __name__ == "__main__":
    main()
