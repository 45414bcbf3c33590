"""The `nlg` scorer (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) against pycocoevalcap 1.2 called directly, in one process.

Usage: python benchmarks/nlg_throughput.py [--n 590] [--tok ptb|r2gen] [--workers N] [--n-boot 0]
                                           [--upstream-first]

Two sets of --n IU X-Ray pairs, read from $BENCH_SHARED or ../shared: set A pairs the test reports
(references) with train reports (predictions); set B pairs other train reports on both sides, so no
text of B is in A. In one process, in this order (``--upstream-first`` swaps 1 and 2):

  1. ``rrg_bench.score(A)``: the process's first call, so it starts the JVMs (METEOR, PTB tokeniser);
  2. pycocoevalcap on A as COCOEvalCap calls it: ``PTBTokenizer().tokenize`` on references and on
     predictions, ``Bleu(4)``, ``Meteor()`` (its own JVM), ``Rouge()``, ``Cider()``;
  3. ``rrg_bench.score(B)``: a second call on new texts (no result of any kind can be reused; the
     live JVMs are);
  4. pycocoevalcap on B.

Prints seconds and ratios, and how far every corpus value and every per-study METEOR, ROUGE-L and
CIDEr-D score is from upstream's (the claim is <= 1e-12; the count of bit-identical values is shown).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def iu_reports() -> dict[str, list[str]]:
    shared = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared"))
    ann = json.loads((shared / "data" / "iu_xray" / "annotation.json").read_text())
    return {split: [e["report"] for e in entries] for split, entries in ann.items()}


def two_sets(n: int) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """(hyps, refs) of set A and set B, each n pairs (cycled if a source is shorter)."""
    reports = iu_reports()
    test, train = reports["test"], reports["train"]
    cyc = lambda src, start: [src[(start + i) % len(src)] for i in range(n)]  # noqa: E731
    return (cyc(train, 0), cyc(test, 0)), (cyc(train, 2 * n), cyc(train, n))


def upstream(hyps: list[str], refs: list[str], tok: str) -> tuple[float, dict[str, Any]]:
    """pycocoevalcap 1.2 as COCOEvalCap runs it: (seconds, values and per-study scores)."""
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
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    met, met_items = meteor.compute_score(gts, res)
    rouge, rouge_items = Rouge().compute_score(gts, res)
    cider, cider_items = Cider().compute_score(gts, res)
    elapsed = time.perf_counter() - start
    meteor.meteor_p.kill()
    meteor.meteor_p.wait()
    values = {**{f"bleu{k + 1}": v for k, v in enumerate(bleu)}, "meteor": met, "rouge_l": rouge, "cider_d": cider}
    return elapsed, {"values": values, "meteor": list(met_items), "rouge_l": list(rouge_items),
                     "cider_d": list(cider_items)}


def ours(hyps: list[str], refs: list[str], tok: str, workers: int | None, n_boot: int) -> tuple[float, dict[str, Any]]:
    import rrg_bench

    start = time.perf_counter()
    scores = rrg_bench.score(hyps, refs, metrics=f"nlg[tok={tok}]", n_boot=n_boot, workers=workers)
    elapsed = time.perf_counter() - start
    stats = next(iter(scores.stats.values()))
    values = {mid.split("[")[0]: m.value for mid, m in scores.metrics.items()}
    return elapsed, {"values": values, **{c: stats[c].tolist() for c in ("meteor", "rouge_l", "cider_d")}}


def differences(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, int, int]:
    """(largest absolute difference, values bit-identical, values compared) over corpus and per-study values."""
    pairs = [(a["values"][k], b["values"][k]) for k in b["values"]]
    pairs += [(x, y) for c in ("meteor", "rouge_l", "cider_d") for x, y in zip(a[c], b[c], strict=True)]
    return max(abs(x - y) for x, y in pairs), sum(x == y for x, y in pairs), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=590)
    parser.add_argument("--tok", choices=["ptb", "r2gen"], default="ptb")
    parser.add_argument("--workers", type=int, default=None, help="--workers for our calls (default: the scorer's)")
    parser.add_argument("--n-boot", type=int, default=0, help="bootstrap resamples inside our timed calls")
    parser.add_argument("--upstream-first", action="store_true", help="run pycocoevalcap on set A before ours")
    args = parser.parse_args()

    (hyps_a, refs_a), (hyps_b, refs_b) = two_sets(args.n)
    load = os.getloadavg()[0]
    if args.upstream_first:
        up_a = upstream(hyps_a, refs_a, args.tok)
        first = ours(hyps_a, refs_a, args.tok, args.workers, args.n_boot)
    else:
        first = ours(hyps_a, refs_a, args.tok, args.workers, args.n_boot)
        up_a = upstream(hyps_a, refs_a, args.tok)
    second = ours(hyps_b, refs_b, args.tok, args.workers, args.n_boot)
    up_b = upstream(hyps_b, refs_b, args.tok)

    print(f"n={args.n} tok={args.tok} workers={args.workers or 'default'} n_boot={args.n_boot} "
          f"cpus={os.cpu_count()} load(1 min) at start={load:.2f}")
    for label, mine, theirs in (("A (first call)", first, up_a), ("B (second call)", second, up_b)):
        worst, same, total = differences(mine[1], theirs[1])
        print(f"  set {label:16s} rrg-bench {mine[0]:6.2f} s   pycocoevalcap {theirs[0]:6.2f} s   "
              f"upstream/ours {theirs[0] / mine[0]:5.2f}x   max |diff| {worst:.1e} ({same}/{total} bit-identical)")
    print(f"  rrg-bench first/second call {first[0] / second[0]:5.2f}x")


if __name__ == "__main__":
    main()
