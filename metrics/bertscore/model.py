"""BERTScore's numeric side, on a local model: where the model is, how texts are embedded and matched.

Why not ``bert_score.BERTScorer``: see ``scorer.py``. Everything numeric below is bert-score's
own code (``get_idf_dict``, ``get_bert_embedding``, ``greedy_cos_idf``, the shipped rescale
baselines) driven in a fixed order; what is ours is finding the model without a network and
the batching that keeps results independent of Python's set order.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rrg_bench.errors import UsageError, WeightsUnavailable
from rrg_bench.weights import hub_snapshot, weights_dir

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "distilroberta-base"
#: bert-score 0.3.x ``model2layers["distilroberta-base"]`` (tested against the package)
DEFAULT_LAYER = 5
#: Hub ids under which a model may sit in the local Hugging Face cache
HUB_ALIASES: dict[str, tuple[str, ...]] = {
    "distilroberta-base": ("distilroberta-base", "distilbert/distilroberta-base"),
}
#: distilbert/distilroberta-base snapshot seen in public projects' HF cache paths; looked up first
HUB_REVISIONS: dict[str, str] = {"distilroberta-base": "fb53ab8802853c8e4fbdbcd0529f21fc6f459b2b"}
ENV_MODEL_DIR = "BENCH_BERTSCORE_MODEL_DIR"
#: BERTScorer.score's default batch size: texts are embedded, and pairs matched, in batches of it
PAIR_BATCH = 64
EMBED_BATCH = PAIR_BATCH
#: pairs embedded together; a multiple of PAIR_BATCH keeps bert-score's pair batches
CHUNK_PAIRS = 16 * PAIR_BATCH
LANG = "en"


def default_layers(model: str) -> int:
    """bert-score's ``model2layers`` entry (5 for distilroberta-base, known without importing it)."""
    if model == DEFAULT_MODEL:
        return DEFAULT_LAYER
    try:
        from bert_score.utils import model2layers
    except ImportError:
        model2layers = {}
    if model not in model2layers:
        raise UsageError(f"bertscore: bert-score has no default layer for model {model!r}; give layers=N")
    return int(model2layers[model])


def baseline_file(model: str) -> Path:
    """The rescale baseline bert-score ships for ``model`` (never downloaded)."""
    import bert_score

    return Path(bert_score.__file__).parent / "rescale_baseline" / LANG / f"{model}.tsv"


def read_baseline(model: str, layers: int) -> torch.Tensor:
    """(P, R, F) baseline of ``layers`` as float32, exactly as ``BERTScorer.baseline_vals``."""
    import pandas as pd
    import torch

    path = baseline_file(model)
    if not path.is_file():
        raise WeightsUnavailable(f"bertscore: bert-score ships no rescale baseline for {model!r} ({path}); "
                                 f"use rescale=false")
    return torch.from_numpy(pd.read_csv(path).iloc[layers].to_numpy().copy())[1:].float()


# ----------------------------------------------------------------------------- weights


def _has_model_files(path: Path) -> bool:
    return (path / "config.json").is_file() and any(
        (path / name).is_file() for name in ("model.safetensors", "pytorch_model.bin"))


def resolve_model_dir(model: str, explicit: str | Path | None = None) -> Path:
    """A local directory holding ``model`` (config, tokenizer files, weights); never downloads.

    Looked up in order: ``explicit``; ``$BENCH_BERTSCORE_MODEL_DIR`` (the model itself or a
    folder holding ``<model>/``); our weights dir ``<weights dir>/<model>``; the local Hugging
    Face cache (``local_files_only``).
    """
    looked: list[str] = []
    if explicit is not None:
        p = Path(explicit).expanduser()
        if _has_model_files(p):
            return p
        raise WeightsUnavailable(f"bertscore: model_dir={p} lacks config.json and model.safetensors/pytorch_model.bin")
    env = os.environ.get(ENV_MODEL_DIR)
    if env:
        for p in (Path(env).expanduser(), Path(env).expanduser() / model):
            if _has_model_files(p):
                return p
        looked.append(f"${ENV_MODEL_DIR}={env}")
    else:
        looked.append(f"${ENV_MODEL_DIR} (unset)")
    ours = weights_dir() / model
    if _has_model_files(ours):
        return ours
    looked.append(str(ours))
    pinned = HUB_REVISIONS.get(model)
    for revision in ([pinned] if pinned else []) + [None]:
        for repo in HUB_ALIASES.get(model, (model,)):
            try:
                cached = hub_snapshot(repo, revision, local_files_only=True, who="bertscore: model",
                                      fix="Pass model_dir=DIR.")
            except WeightsUnavailable:  # not cached (any hub error means the same here)
                looked.append(f"Hugging Face cache ({repo}@{(revision or 'main')[:12]})")
                continue
            if _has_model_files(cached):
                return cached
            looked.append(f"{cached} (incomplete)")
    repo = HUB_ALIASES.get(model, (model,))[-1]
    rev = f" --revision {pinned}" if pinned else ""
    raise WeightsUnavailable(
        f"bertscore: {model} weights not found. Looked in: {'; '.join(looked)}. On a machine with Hub access run "
        f"`huggingface-cli download {repo}{rev} --local-dir {ours}`, copy the folder here, or pass model_dir=DIR / "
        f"set {ENV_MODEL_DIR}=DIR.")



# ----------------------------------------------------------------------------- the model


class BertScoreModel:
    """Tokenizer + truncated encoder of one model directory, loaded through bert-score."""

    def __init__(self, model_dir: Path, layers: int, device: str = "cpu") -> None:
        from bert_score.utils import get_model, get_tokenizer

        self.model_dir = Path(model_dir)
        self.layers = layers
        self.device = device
        self.tokenizer = get_tokenizer(str(self.model_dir), use_fast=False)
        self.model = get_model(str(self.model_dir), layers).to(device).eval()

    def idf_weights(self, references: Sequence[str] | None) -> dict[int, float]:
        """bert-score's IDF table from ``references``; uniform (0 for [CLS]/[SEP]) when None."""
        from bert_score.utils import get_idf_dict

        if references is not None:
            return get_idf_dict(list(references), self.tokenizer, nthreads=0)
        uniform: dict[int, float] = defaultdict(lambda: 1.0)
        uniform[self.tokenizer.sep_token_id] = 0
        uniform[self.tokenizer.cls_token_id] = 0
        return uniform

    def embed(self, texts: Sequence[str], idf: dict[int, float], batch_size: int
              ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Token embeddings and IDF weights of each distinct text, in a fixed batch order."""
        from bert_score.utils import get_bert_embedding

        # bert-score's order (most space-separated words first), with ties broken by the text
        unique = sorted(set(texts), key=lambda t: (-len(t.split(" ")), t))
        out: dict[str, tuple[Any, Any]] = {}
        for start in range(0, len(unique), batch_size):
            batch = unique[start:start + batch_size]
            emb, mask, padded_idf = get_bert_embedding(batch, self.model, self.tokenizer, idf, device=self.device)
            emb, mask, padded_idf = emb.cpu(), mask.cpu(), padded_idf.cpu()
            for i, text in enumerate(batch):
                n = int(mask[i].sum().item())
                out[text] = (emb[i, :n], padded_idf[i, :n])
        return out


def _pad(stats: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``pad_batch_stats`` of bert-score's ``bert_cos_score_idf``: embeddings padded with 2.0."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    emb = [e for e, _ in stats]
    lens = torch.tensor([e.size(0) for e in emb], dtype=torch.long)
    emb_pad = pad_sequence(emb, batch_first=True, padding_value=2.0)
    idf_pad = pad_sequence([i for _, i in stats], batch_first=True)
    mask = torch.arange(int(lens.max()), dtype=torch.long).expand(len(lens), int(lens.max())) < lens.unsqueeze(1)
    return emb_pad, mask, idf_pad


def bertscore_prf(model: BertScoreModel, hyps: Sequence[str], refs: Sequence[str], *, idf: bool,
                  baseline: torch.Tensor | None, batch_size: int = 16,
                  advance: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pair (P, R, F) as float32 arrays, in the order of the pairs.

    ``hyps``/``refs`` are used as given (the caller applies the convention's preprocessing).
    """
    import torch
    from bert_score.utils import greedy_cos_idf

    weights = model.idf_weights(refs if idf else None)
    rows: list[torch.Tensor] = []
    # bert-score prints a warning per batch holding an empty text; the scorer adds one note instead
    with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
        for start in range(0, len(refs), CHUNK_PAIRS):
            chunk_refs, chunk_hyps = refs[start:start + CHUNK_PAIRS], hyps[start:start + CHUNK_PAIRS]
            stats = model.embed([*chunk_refs, *chunk_hyps], weights, batch_size)
            for b in range(0, len(chunk_refs), PAIR_BATCH):
                ref_stats = _pad([stats[t] for t in chunk_refs[b:b + PAIR_BATCH]])
                hyp_stats = _pad([stats[t] for t in chunk_hyps[b:b + PAIR_BATCH]])
                p, r, f = greedy_cos_idf(*ref_stats, *hyp_stats, False)
                rows.append(torch.stack((p, r, f), dim=-1).cpu())
            if advance is not None:
                advance(len(chunk_refs))
    preds = torch.cat(rows, dim=0) if rows else torch.zeros((0, 3))
    if baseline is not None:
        preds = (preds - baseline) / (1 - baseline)
    arr = preds.numpy()
    return arr[:, 0], arr[:, 1], arr[:, 2]

