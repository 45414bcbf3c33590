"""SembScore (CXR-Report-Metric ``semb_score``): cosine of CheXbert [CLS] embeddings.

Definition (rajpurkarlab/CXR-Report-Metric ``CXRMetric/CheXbert/src/encode.py`` with
``models/bert_encoder.py(logits=False)``, and ``run_eval.py::add_semb_col``): each report is
tokenised as the CheXbert labeler does (strip, whitespace runs to one space, bert-base-uncased
WordPiece, [CLS] … [SEP], cut at 512, an empty report is [CLS] [SEP]); the embedding is the
final hidden state of [CLS] of the CheXbert checkpoint's BERT (no dropout, no heads); the
score of a pair is ``(gt * pred).sum() / (norm(gt) * norm(pred))`` in float32; the number is
the mean over reports.

The network, checkpoint lookup and tokeniser are our CheXbert package's (``metrics.chexbert``,
its ``model.py``): the same ``chexbert.pth`` as CheXbert F1, loaded strictly. Each
distinct text is embedded once, in length-sorted padded batches, and its embedding is kept in
the annotation cache, so a second scoring of the same references runs no model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.errors import WeightsUnavailable

if TYPE_CHECKING:
    import pandas as pd

    from rrg_bench.metrics.chexbert.model import CheXbertLabeler

COLUMN_ID = "sembscore"
#: bump when anything that changes a cached embedding changes here
EMBEDDING_VERSION = "1"


class SembScoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: chexbert.pth (default: ``bench.weights.resolve("chexbert")``); paths are not part of the spec
    ckpt: str | None = None
    #: bert-base-uncased vocab.txt or tokenizer directory
    tokenizer: str | None = None
    #: a BERT config.json (default: bert-base-uncased's values)
    config: str | None = None


def cls_embeddings(labeler: CheXbertLabeler, texts: Sequence[str], batch_size: int = 16,
                   advance: Callable[[int], Any] | None = None) -> np.ndarray:
    """(n, hidden) float32 [CLS] states of the CheXbert BERT, batched as the labels are."""
    import torch

    out = np.zeros((len(texts), labeler.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for rows, batch, mask in labeler.batches(texts, batch_size):
            hidden = labeler.model.bert(batch, attention_mask=mask)[0]
            out[rows] = hidden[:, 0, :].float().cpu().numpy()
            if advance is not None:
                advance(len(rows))
    return out


def semb_cosine(reference: np.ndarray, hypothesis: np.ndarray) -> float:
    """``add_semb_col``'s similarity of one pair, in float32 as upstream."""
    label, pred = np.asarray(reference, dtype=np.float32), np.asarray(hypothesis, dtype=np.float32)
    return float((label * pred).sum() / (np.linalg.norm(label) * np.linalg.norm(pred)))


class SembScoreScorer(Scorer):
    """CheXbert embedding cosine between each hypothesis and its reference, mean over reports."""

    name = "sembscore"
    version = "1"
    Params = SembScoreParams
    params: SembScoreParams

    @property
    def spec(self) -> str:
        return self.name

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {}, "impl": self.impl()}

    def _chexbert(self) -> Any:
        from rrg_bench.metrics.chexbert.scorer import CheXbertScorer

        return CheXbertScorer(ckpt=self.params.ckpt, tokenizer=self.params.tokenizer, config=self.params.config)

    def columns(self) -> list[Column]:
        return [Column(
            id=COLUMN_ID, display="SembScore",
            convention=("cosine of CheXbert [CLS] final hidden states (chexbert.pth BERT, CheXbert tokenisation), "
                        "float32, mean over reports (CXR-Report-Metric semb_score / ReXrank SembScore)"),
        )]

    def unavailable_reason(self) -> str | None:
        return self._chexbert().unavailable_reason()

    def impl(self) -> dict[str, Any]:
        facts = dict(self._chexbert().impl())
        facts.update({"implementation": f"metrics.sembscore v{self.version}", "embedding_version": EMBEDDING_VERSION,
                      "equivalent_to": "CXR-Report-Metric CheXbert/src/encode.py + run_eval.add_semb_col"})
        return facts

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        from rrg_bench.cache import annotate_cached

        if not len(study_ids) == len(hyps) == len(refs):
            raise ValueError(f"sembscore: {len(study_ids)} ids, {len(hyps)} hypotheses, {len(refs)} references")
        chexbert = self._chexbert()
        reason = chexbert.unavailable_reason()
        if reason is not None:
            raise WeightsUnavailable(reason)
        labeler = chexbert.labeler(ctx.device)
        namespace = f"sembscore/emb={EMBEDDING_VERSION}/" + chexbert.annotation_namespace(labeler)

        def embed(texts: list[str]) -> list[list[float]]:
            advance = ctx.progress("CheXbert embeddings", len(texts)) if ctx.progress else None
            return cls_embeddings(labeler, texts, ctx.batch_size, advance).tolist()

        n = len(study_ids)
        values, hits, misses = annotate_cached(ctx.cache, namespace, [*refs, *hyps], embed, normaliser="ws")
        emb = np.asarray(values, dtype=np.float32)
        scores = np.array([semb_cosine(emb[i], emb[n + i]) for i in range(n)], dtype=np.float64)
        stats = pd.DataFrame({"semb": scores}, index=pd.Index(list(study_ids), name="study_id"))
        notes = [f"embeddings: {misses} texts run through CheXbert, {hits} from the cache"]
        return ScoreResult(values=self.aggregate(stats), stats=stats, cache_hits=hits, cache_misses=misses,
                           notes=notes)

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        return stats[["semb"]].rename(columns={"semb": COLUMN_ID})

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["semb"].to_numpy(dtype=np.float64)
        return {COLUMN_ID: float(np.mean(values)) if len(values) else float("nan")}
