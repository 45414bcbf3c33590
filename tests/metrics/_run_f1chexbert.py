"""Run f1chexbert 0.0.2 itself (unmodified) on given hyps/refs and dump what it computes.

Executed in a subprocess by the parity test and the throughput benchmark, with HF_HOME /
XDG_CACHE_HOME pointing at an offline layout (see _chexbert_doubles.upstream_env), because
upstream resolves 'bert-base-uncased' and CACHE_DIR/chexbert.pth at import/construction time.

Input JSON: {"hyps": [...], "refs": [...], "workdir": str, "ids": bool, "threads": int | null}
Output JSON: rrg label vectors of refs and hyps (as forward() wrote them), the raw class codes
of every labelled report (argmax of upstream's own model outputs, recorded by a forward hook
during forward(): refs first, then hyps), upstream tokenize() ids, forward()'s
accuracy/cr/cr_5, timings.
"""

from __future__ import annotations

import ast
import json
import sys
import time
from pathlib import Path


def main(inp: str, out: str) -> None:
    job = json.loads(Path(inp).read_text())
    import pandas as pd
    import torch
    from f1chexbert.f1chexbert import F1CheXbert, tokenize

    torch.manual_seed(0)
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    work = Path(job["workdir"])
    refs_file, hyps_file = work / "refs_labels.txt", work / "hyps_labels.txt"
    for f in (refs_file, hyps_file):
        f.unlink(missing_ok=True)
    t0 = time.perf_counter()
    scorer = F1CheXbert(refs_filename=str(refs_file), hyps_filename=str(hyps_file), device="cpu")
    t_init = time.perf_counter() - t0
    result: dict = {"init_seconds": t_init}
    texts = list(dict.fromkeys(job["refs"] + job["hyps"]))
    if job.get("ids", True):
        result["ids"] = dict(zip(texts, tokenize(pd.Series(texts), scorer.tokenizer)))
    raw: list[list[int]] = []
    # observation only: records the argmax of each head for each report upstream labels
    hook = scorer.model.register_forward_hook(
        lambda module, args, outputs: raw.append([int(o.argmax(dim=1).item()) for o in outputs]))
    t0 = time.perf_counter()
    accuracy, pe_accuracy, cr, cr_5 = scorer(job["hyps"], job["refs"])
    result["forward_seconds"] = time.perf_counter() - t0
    result["accuracy"] = float(accuracy)
    result["pe_accuracy"] = [float(x) for x in pe_accuracy]
    result["cr"], result["cr_5"] = cr, cr_5
    result["refs_rrg"] = [ast.literal_eval(line) for line in refs_file.read_text().splitlines()]
    result["hyps_rrg"] = [ast.literal_eval(line) for line in hyps_file.read_text().splitlines()]
    hook.remove()
    result["raw_codes"] = raw
    Path(out).write_text(json.dumps(result, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
