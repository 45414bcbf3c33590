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

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.errors import WeightsUnavailable
from rrg_bench.hashing import sha256_file, sha256_text, sha256_tree
from rrg_bench.metrics.bertscore.model import (
    DEFAULT_MODEL,
    EMBED_BATCH,
    LANG,
    BertScoreModel,
    baseline_file,
    bertscore_prf,
    default_layers,
    read_baseline,
    resolve_model_dir,
)

if TYPE_CHECKING:
    import pandas as pd

IMPL_VERSION = "1"


def collapse_spaces(text: str) -> str:
    """CXR-Report-Metric's only preprocessing: ``re.sub(r' +', ' ', text)``."""
    return re.sub(r" +", " ", text)


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
_RECENT: OrderedDict[str, pd.DataFrame] = OrderedDict()
_RECENT_SIZE = 4


class BertScoreScorer(Scorer):
    """BERTScore F1 per report (bert-score matching, baseline-rescaled), mean over reports."""

    name = "bertscore"
    version = "1"
    Params = BertScoreParams
    params: BertScoreParams

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
        facts["model_files_sha256"] = sha256_tree(model_dir)  # weights included
        if self.params.rescale:
            path = baseline_file(self.params.model)
            if path.is_file():
                facts["baseline_file"] = f"bert_score/rescale_baseline/{LANG}/{path.name}"
                facts["baseline_sha256"] = sha256_file(path)
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
        key = sha256_text(json.dumps([self.spec, str(model.model_dir.resolve()), ctx.device,
                                      list(study_ids), hyps_c, refs_c]))
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

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        return stats[["f1"]].rename(columns={"f1": self.column_id})

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["f1"].to_numpy(dtype=np.float64)
        return {self.column_id: float(np.mean(values)) if len(values) else float("nan")}
