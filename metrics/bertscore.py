"""BERTScore as CXR-Report-Metric / ReXrank compute it: bert-score's matching on a local model.

Why not ``bert_score.BERTScorer`` as is: it loads the model and tokenizer by Hub name inside
its constructor, computes IDF in a multiprocessing pool, and embeds the texts in batches
whose composition depends on Python's set order (so the last bits of a score change from one
process to the next). Here the model comes from a local directory (never downloaded), the
texts are embedded in a fixed order (token length, then text), and everything numeric is
bert-score's own code: ``sent_encode`` (tokenisation), ``get_idf_dict``,
``get_bert_embedding`` (padding + attention mask), ``greedy_cos_idf`` (matching, on pair
batches of 64 in input order, as ``BERTScorer.score`` does) and the rescaling with the
baseline file shipped inside the bert-score package. tests/metrics/test_rexrank_bertscore.py
shows |Δ| <= 1e-6 against ``bert_score.BERTScorer`` on the same (tiny, random) model.

The convention (CXR-Report-Metric ``run_eval.py::add_bertscore_col``): runs of spaces in
both texts collapsed to one (``re.sub(r' +', ' ', text)``), then
``BERTScorer(model_type="distilroberta-base", lang="en", rescale_with_baseline=True,
idf=use_idf, idf_sents=references)`` and its F1 per report; the number is the mean over
reports. distilroberta-base uses layer 5 (bert-score's ``model2layers``). IDF is a named
switch because the sources disagree: CXR-Report-Metric's ``config.py`` has
``USE_IDF = False`` and the ReXrank-metric README says "IDF disabled", while RadEval's RadCliQ
uses ``idf=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from rrg_bench.errors import UsageError, WeightsUnavailable
from rrg_bench.api.scorer import Column, ScoreResult, Scorer, ScoringContext

if TYPE_CHECKING:
    import pandas as pd
    import torch

DEFAULT_MODEL = "distilroberta-base"
#: bert-score 0.3.x ``model2layers["distilroberta-base"]`` (tested against the package)
DEFAULT_LAYER = 5
#: Hub ids under which a model may sit in the local Hugging Face cache
HUB_ALIASES: dict[str, tuple[str, ...]] = {"distilroberta-base": ("distilroberta-base", "distilbert/distilroberta-base")}
#: distilbert/distilroberta-base snapshot seen in public projects' HF cache paths; looked up first
HUB_REVISIONS: dict[str, str] = {"distilroberta-base": "fb53ab8802853c8e4fbdbcd0529f21fc6f459b2b"}
ENV_MODEL_DIR = "BENCH_BERTSCORE_MODEL_DIR"
#: BERTScorer.score's default batch size: texts are embedded, and pairs matched, in batches of it
PAIR_BATCH = 64
EMBED_BATCH = PAIR_BATCH
#: pairs embedded together; a multiple of PAIR_BATCH keeps bert-score's pair batches
CHUNK_PAIRS = 16 * PAIR_BATCH
IMPL_VERSION = "1"
LANG = "en"


def collapse_spaces(text: str) -> str:
    """CXR-Report-Metric's only preprocessing: ``re.sub(r' +', ' ', text)``."""
    return re.sub(r" +", " ", text)


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


def read_baseline(model: str, layers: int) -> "torch.Tensor":
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
    from rrg_bench.weights import weights_dir

    ours = weights_dir() / model
    if _has_model_files(ours):
        return ours
    looked.append(str(ours))
    pinned = HUB_REVISIONS.get(model)
    for revision in ([pinned] if pinned else []) + [None]:
        for repo in HUB_ALIASES.get(model, (model,)):
            try:
                from huggingface_hub import snapshot_download

                cached = Path(snapshot_download(repo, revision=revision, local_files_only=True))
            except Exception:  # not cached (any hub error means the same here)
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


def model_files_sha256(model_dir: Path) -> str:
    """sha256 over the model directory's files (weights included), memoised per file."""
    from rrg_bench.hashing import sha256_tree as tree_sha256

    return tree_sha256(model_dir)


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
              ) -> dict[str, tuple["torch.Tensor", "torch.Tensor"]]:
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


def _pad(stats: list[tuple["torch.Tensor", "torch.Tensor"]]) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
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
                  baseline: "torch.Tensor | None", batch_size: int = 16,
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


# ----------------------------------------------------------------------------- the scorer


class BertScoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    #: bert-score model name: picks the rescale baseline file and the default layer
    model: str = DEFAULT_MODEL
    #: encoder layer whose output is matched (default: bert-score's model2layers, 5 for distilroberta-base)
    layers: int | None = None
    #: IDF weights from the evaluated set's references (CXR-Report-Metric use_idf)
    idf: bool = False
    #: rescale with bert-score's baseline file for (model, layer)
    rescale: bool = True
    #: a local model directory; where the weights live is not a convention, so not in the spec
    model_dir: str | None = None


_MODELS: dict[tuple[str, int, str], BertScoreModel] = {}
_MODELS_LOCK = threading.Lock()
#: recent results, so a suite that runs ``bertscore`` and ``radcliq_v1`` embeds once
_RECENT: "OrderedDict[str, pd.DataFrame]" = OrderedDict()
_RECENT_SIZE = 4


class BertScoreScorer(Scorer):
    """BERTScore F1 per report (bert-score matching, baseline-rescaled), mean over reports."""

    name = "bertscore"
    version = "1"
    Params = BertScoreParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.layers = self.params.layers if self.params.layers is not None else default_layers(self.params.model)

    @property
    def spec(self) -> str:
        p = self.params
        return (f"{self.name}[idf={str(p.idf).lower()},layers={self.layers},model={p.model},"
                f"rescale={str(p.rescale).lower()}]")

    @property
    def column_id(self) -> str:
        return self.spec

    def fingerprint(self) -> dict[str, Any]:
        p = self.params
        return {"name": self.name, "version": self.version, "impl": self.impl(),
                "params": {"model": p.model, "layers": self.layers, "idf": p.idf, "rescale": p.rescale}}

    def columns(self) -> list[Column]:
        p = self.params
        return [Column(
            id=self.column_id, display="BERTScore F1",
            convention=(f"bert-score F1 per report, {p.model} layer {self.layers}, "
                        f"{'IDF from the references' if p.idf else 'no IDF'}, "
                        f"{'rescaled with bert-score baseline (lang=en)' if p.rescale else 'not rescaled'}; "
                        f"runs of spaces collapsed first; mean over reports (CXR-Report-Metric bertscore)"),
        )]

    def model_dir(self) -> Path:
        return resolve_model_dir(self.params.model, self.params.model_dir)

    def unavailable_reason(self) -> str | None:
        try:
            import bert_score  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            return f"bertscore needs torch and bert-score ({exc}): pip install 'bert-score==0.3.13'"
        try:
            self.model_dir()
            if self.params.rescale:
                read_baseline(self.params.model, self.layers)
        except WeightsUnavailable as exc:
            return str(exc)
        return None

    def impl(self) -> dict[str, Any]:
        from importlib import metadata

        facts: dict[str, Any] = {"implementation": f"metrics.bertscore v{IMPL_VERSION}"}
        try:
            facts["packages"] = {p: metadata.version(p) for p in ("bert-score", "torch", "transformers")}
        except metadata.PackageNotFoundError as exc:
            facts["unavailable"] = f"package missing: {exc}"
        try:
            model_dir = self.model_dir()
        except WeightsUnavailable as exc:
            facts["weights"] = f"unavailable: {exc}"
            return facts
        facts["model_dir"] = str(model_dir)
        facts["model_files_sha256"] = model_files_sha256(model_dir)
        if self.params.rescale:
            path = baseline_file(self.params.model)
            if path.is_file():
                facts["baseline_file"] = f"bert_score/rescale_baseline/{LANG}/{path.name}"
                facts["baseline_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        return facts

    def load(self, device: str = "cpu") -> BertScoreModel:
        model_dir = self.model_dir()
        key = (str(model_dir.resolve()), self.layers, device)
        with _MODELS_LOCK:
            if key not in _MODELS:
                _MODELS.clear()  # keep one encoder in memory
                _MODELS[key] = BertScoreModel(model_dir, self.layers, device)
            return _MODELS[key]

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        if not len(study_ids) == len(hyps) == len(refs):
            raise ValueError(f"bertscore: {len(study_ids)} ids, {len(hyps)} hypotheses, {len(refs)} references")
        reason = self.unavailable_reason()
        if reason is not None:
            raise WeightsUnavailable(reason)
        model = self.load(ctx.device)
        hyps_c = [collapse_spaces(h) for h in hyps]
        refs_c = [collapse_spaces(r) for r in refs]
        key = hashlib.sha256(json.dumps([self.spec, str(model.model_dir.resolve()), ctx.device,
                                         list(study_ids), hyps_c, refs_c]).encode("utf-8")).hexdigest()
        notes: list[str] = []
        if key in _RECENT:
            stats = _RECENT[key].copy()
        else:
            baseline = read_baseline(self.params.model, self.layers) if self.params.rescale else None
            advance = ctx.progress("BERTScore", len(refs)) if ctx.progress else None
            p, r, f = bertscore_prf(model, hyps_c, refs_c, idf=self.params.idf, baseline=baseline,
                                           batch_size=EMBED_BATCH, advance=advance)
            stats = pd.DataFrame({"precision": p.astype(np.float64), "recall": r.astype(np.float64),
                                  "f1": f.astype(np.float64)}, index=pd.Index(list(study_ids), name="study_id"))
            _RECENT[key] = stats.copy()
            while len(_RECENT) > _RECENT_SIZE:
                _RECENT.popitem(last=False)
        n_empty = sum(1 for h in hyps_c if not h.strip())
        if n_empty:
            notes.append(f"{n_empty} empty hypotheses score raw P=R=F=0 as in bert-score"
                         + (" (rescaled: negative)" if self.params.rescale else ""))
        return ScoreResult(values=self.aggregate(stats), stats=stats, notes=notes)

    def aggregate(self, stats: "pd.DataFrame") -> dict[str, float]:
        values = stats["f1"].to_numpy(dtype=np.float64)
        return {self.column_id: float(np.mean(values)) if len(values) else float("nan")}
