"""Seconds per training epoch of anat_attn with and without the frozen-encoder feature cache.

Trains the tiny model (same classes as the paper model; random init, tokenizer from the train
reports) twice on the same data — once reading cached encoder features and masks, once decoding
images and running the encoder every batch — and prints per-epoch wall time. The cache build is
reported separately: it is paid once per (encoder, preprocessing, mask source, image list).

    python benchmarks/anat_attn_feature_cache.py                 # shipped demo dataset, offline
    python benchmarks/anat_attn_feature_cache.py --dataset iu_xray/r2gen --data-root DIR --limit 256

One intra-op thread by default: on a shared 2-core machine more threads make timings erratic.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path


def epoch_seconds(log: Path) -> tuple[list[float], float]:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    epochs = [r["seconds"] for r in records if r["event"] == "epoch"]
    start = next(r for r in records if r["event"] == "start")
    return epochs, float(start["cache_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--limit", type=int, default=None, help="first N train studies")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from rrg_bench.api.training import TrainRequest
    from rrg_bench.baselines.anat_attn.train import train
    from rrg_bench.run import load_dataset

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset, Path(args.data_root) if args.data_root else None)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cached in (True, False):
            out = Path(tmp) / ("cached" if cached else "uncached")
            overrides = {
                "feature_cache": str(cached).lower(),
                "epochs": str(args.epochs),
                "batch_size": str(args.batch_size),
                "eval_every_steps": "1000000",  # no validation inside the timed epochs
                "save_every_steps": "1000000",
            }
            train(TrainRequest(dataset=dataset, output_dir=out, preset="tiny", limit=args.limit, progress=False,
                               val_split="", overrides=overrides))
            results[cached] = epoch_seconds(out / "loss_log.jsonl")

    n = args.limit or len(dataset.studies("train"))
    print(f"anat_attn tiny model, {args.dataset} train ({n} studies), batch {args.batch_size}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(f"{'':28s}" + "".join(f"epoch {i + 1:<4d}" for i in range(args.epochs)) + "median")
    for cached, label in ((False, "without cache (s/epoch)"), (True, "with cache (s/epoch)")):
        epochs, _ = results[cached]
        print(f"{label:28s}" + "".join(f"{s:<10.3f}" for s in epochs) + f"{statistics.median(epochs):.3f}")
    build = results[True][1]
    ratio = statistics.median(results[False][0]) / statistics.median(results[True][0])
    print(f"one-off cache build: {build:.3f} s; cached epochs are {ratio:.2f}x faster")


if __name__ == "__main__":
    main()
