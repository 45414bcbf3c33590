"""The ``radeval_bertscore`` scorer: RadEval's BERTScore variant on its domain ModernBERT.

RadEval (``metrics/radevalbertscore``) runs its vendored bert-score 0.3.13 with
``model_type="IAMJB/RadEvalModernBERT", num_layers=22, idf=False, rescale_with_baseline=False``
on chunks of 64 pairs and reports the mean F1. bert-score's numeric functions are the same
in the package we install (tokenisation ``sent_encode``, layer truncation ``get_model``,
``get_bert_embedding``, ``greedy_cos_idf``), so this scorer drives them through
``metrics.bertscore.model`` with a fast tokenizer (ModernBERT has no other) and no text
preprocessing (RadEval collapses no spaces).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.errors import WeightsUnavailable
from rrg_bench.hashing import sha256_tree

if TYPE_CHECKING:
    import pandas as pd

    from rrg_bench.metrics.bertscore.model import BertScoreModel

UPSTREAM = "radeval==2.2.1 metrics/radevalbertscore (vendored bert-score 0.3.13)"
#: RadEval's ``num_layers`` for RadEvalModernBERT (all of its layers)
LAYERS = 22
_MODELS: dict[tuple[str, int, str], BertScoreModel] = {}
_LOCK = threading.Lock()


class RadEvalBertScoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    #: encoder layers kept (RadEval: 22, i.e. the last hidden state after ModernBERT's final norm)
    layers: int = Field(default=LAYERS, ge=1)
    #: local model directory (a location: not in the spec; its sha256 is in ``impl``)
    model_dir: str | None = None


def load_model(model_dir: Path, layers: int, device: str) -> BertScoreModel:
    """bert-score's ``get_model`` truncation and a fast tokenizer (RadEval's ``use_fast_tokenizer=True``)."""
    from bert_score.utils import get_model, get_tokenizer

    from rrg_bench.metrics.bertscore.model import BertScoreModel

    key = (str(model_dir.resolve()), layers, device)
    with _LOCK:
        if key not in _MODELS:
            _MODELS.clear()
            model = BertScoreModel.__new__(BertScoreModel)
            model.model_dir, model.layers, model.device = Path(model_dir), layers, device
            model.tokenizer = get_tokenizer(str(model_dir), use_fast=True)
            model.model = get_model(str(model_dir), layers).to(device).eval()
            _MODELS[key] = model
        return _MODELS[key]


class RadEvalBertScoreScorer(Scorer):
    """BERTScore F1 per pair on RadEvalModernBERT (no IDF, not rescaled), mean over pairs."""

    name = "radeval_bertscore"
    version = "1"
    Params = RadEvalBertScoreParams
    params: RadEvalBertScoreParams

    @property
    def spec(self) -> str:
        return self.name if self.params.layers == LAYERS else f"{self.name}[layers={self.params.layers}]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {"layers": self.params.layers},
                "impl": self.impl()}

    def columns(self) -> list[Column]:
        return [Column(id=self.spec, display="RadEval-BERTScore F1",
                       convention=(f"bert-score F1 per pair, IAMJB/RadEvalModernBERT, {self.params.layers} layers, "
                                   f"no IDF, not rescaled, texts as given; mean over pairs ({UPSTREAM})"))]

    def model_dir(self) -> Path:
        from rrg_bench import weights

        return weights.resolve("radeval-modernbert", self.params.model_dir)

    def unavailable_reason(self) -> str | None:
        from importlib.util import find_spec

        missing = [m for m in ("torch", "transformers", "bert_score") if find_spec(m) is None]
        if missing:
            return f"radeval_bertscore needs {', '.join(missing)}: pip install 'rrg-bench[clinical]'"
        try:
            self.model_dir()
        except WeightsUnavailable as exc:
            return str(exc)
        return None

    def impl(self) -> dict[str, Any]:
        from importlib import metadata

        facts: dict[str, Any] = {"implementation": f"metrics.radeval_bertscore v{self.version}",
                                 "equivalent_to": UPSTREAM}
        try:
            facts["packages"] = {p: metadata.version(p) for p in ("bert-score", "torch", "transformers")}
            facts["model_files_sha256"] = sha256_tree(self.model_dir())
        except (metadata.PackageNotFoundError, WeightsUnavailable) as exc:
            facts["unavailable"] = str(exc)
        return facts

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        from rrg_bench.metrics.bertscore.model import EMBED_BATCH, bertscore_prf

        n = self.checked_count(study_ids, hyps, refs, unavailable=WeightsUnavailable)
        model = load_model(self.model_dir(), self.params.layers, ctx.device)
        advance = ctx.progress("RadEval-BERTScore", n) if ctx.progress else None
        p, r, f = bertscore_prf(model, list(hyps), list(refs), idf=False, baseline=None, batch_size=EMBED_BATCH,
                                advance=advance)
        stats = pd.DataFrame({"precision": p.astype(np.float64), "recall": r.astype(np.float64),
                              "f1": f.astype(np.float64)}, index=pd.Index(list(study_ids), name="study_id"))
        empty = sum(1 for h in hyps if not h.strip())
        notes = [f"{empty} empty hypotheses score P=R=F=0 as in bert-score"] if empty else []
        return ScoreResult(values=self.aggregate(stats), stats=stats, notes=notes)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["f1"].to_numpy(dtype=np.float64)
        return {self.spec: float(np.mean(values)) if len(values) else float("nan")}
