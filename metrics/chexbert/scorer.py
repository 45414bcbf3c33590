"""CheXbert F1 (registry name ``chexbert``): f1chexbert-compatible labels, cached, batched.

Columns ``chexbert_f1[labels=14|5,avg=micro|macro|weighted,uncertain=POLICY]``; per-study
statistics are the reference and hypothesis label codes, so bootstrap resamples recompute
every F1 from label matrices without running the model again (``metrics.common.label_f1``).

The network lives in ``model.py`` beside this file (imports torch); this module stays light so
listing metrics never loads torch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, RowsAggregate, Scorer, ScoreResult, ScoringContext
from rrg_bench.cache import annotate_cached
from rrg_bench.errors import BenchError, WeightsUnavailable
from rrg_bench.hashing import sha256_file_memo, sha256_text
from rrg_bench.metrics.common import label_f1
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS

if TYPE_CHECKING:
    import pandas as pd

    from rrg_bench.metrics.chexbert.model import CheXbertLabeler

PREFIX = "chexbert_f1"
UPSTREAM = "f1chexbert==0.0.2"
_POLICY_TEXT = {
    "positive": "uncertain counts as positive (f1chexbert 'rrg')",
    "negative": "uncertain counts as negative",
    "exclude": "cells where reference or hypothesis is uncertain are left out of that label's counts",
}


class CheXbertParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: how an uncertain label counts (see metrics/common/label_f1.py)
    uncertain: Literal["positive", "negative", "exclude"] = "positive"
    #: path to chexbert.pth (default: ``bench.weights.resolve("chexbert")``)
    ckpt: str | None = None
    #: bert-base-uncased vocab.txt or tokenizer directory (default: our weights dir, then the HF cache)
    tokenizer: str | None = None
    #: a BERT config.json (or directory holding one); default: bert-base-uncased's values
    config: str | None = None


# one loaded network per (checkpoint, tokenizer, config, device): scorers that differ only in
# the uncertainty policy share it (bert-base is ~440 MB)
_LABELERS: dict[tuple[str, str, str, str], CheXbertLabeler] = {}
_LABELERS_LOCK = threading.Lock()


class CheXbertScorer(Scorer):
    """CheXpert 14- and 5-label F1 from CheXbert labels of hypothesis and reference."""

    name = "chexbert"
    version = "1"
    Params = CheXbertParams
    params: CheXbertParams

    #: parameters that say where files are, not what is computed: their identity (sha256) is
    #: in ``impl()``, so they stay out of the spec and the fingerprint (records are portable)
    LOCATIONS = ("ckpt", "tokenizer", "config")

    @property
    def spec(self) -> str:
        return f"{self.name}[uncertain={self.params.uncertain}]"

    def fingerprint(self) -> dict[str, Any]:
        params = {k: v for k, v in self.params.model_dump(mode="json").items() if k not in self.LOCATIONS}
        return {"name": self.name, "version": self.version, "params": params, "impl": self.impl()}

    # -- locating the pieces (never downloads) ---------------------------------------------

    def _checkpoint(self) -> Path:
        from rrg_bench import weights

        return weights.resolve("chexbert", self.params.ckpt)

    def _tokenizer_path(self) -> Path:
        from rrg_bench import weights

        if self.params.tokenizer is not None:
            p = Path(self.params.tokenizer).expanduser()
            if not (p.is_file() or (p / "vocab.txt").is_file()):
                raise WeightsUnavailable(f"chexbert: tokenizer={p} is neither a vocab.txt nor a directory holding one")
            return p
        try:
            return weights.resolve("bert-base-uncased")
        except WeightsUnavailable as exc:
            raise WeightsUnavailable(f"chexbert needs bert-base-uncased's tokenizer (vocab.txt): {exc} "
                                     f"Or pass the metric parameter tokenizer=PATH.") from None

    def unavailable_reason(self) -> str | None:
        from importlib.util import find_spec

        missing = [m for m in ("torch", "transformers") if find_spec(m) is None]
        if missing:  # checked without importing them: `bench ls` may ask every scorer
            return f"chexbert needs {' and '.join(missing)}: pip install 'rrg-bench[models]'"
        try:
            self._checkpoint()
            self._tokenizer_path()
        except WeightsUnavailable as exc:
            return str(exc)
        if self.params.config is not None:
            p = Path(self.params.config).expanduser()
            if not (p.is_file() or (p / "config.json").is_file()):
                return f"chexbert: config={p} is neither a config.json nor a directory holding one"
        return None

    def labeler(self, device: str = "cpu") -> CheXbertLabeler:
        """The loaded network (shared across scorer instances with the same files)."""
        from rrg_bench.metrics.chexbert.model import CheXbertLabeler

        ckpt, tok = self._checkpoint(), self._tokenizer_path()
        st = ckpt.stat()  # a file replaced in place is a different network
        key = (f"{ckpt.resolve()}:{st.st_size}:{st.st_mtime_ns}", str(tok.resolve()), str(self.params.config), device)
        with _LABELERS_LOCK:
            if key not in _LABELERS:
                _LABELERS.clear()  # keep at most one network in memory
                _LABELERS[key] = CheXbertLabeler(ckpt, tok, self.params.config, device=device)
            return _LABELERS[key]

    def annotation_namespace(self, labeler: CheXbertLabeler) -> str:
        """The cache namespace: everything that can change a label, nothing that cannot."""
        import json

        from rrg_bench.metrics.chexbert.model import IMPL_VERSION, config_fingerprint, tokenizer_fingerprint

        arch = sha256_text(json.dumps(config_fingerprint(labeler.config), sort_keys=True))
        return (f"chexbert/impl={IMPL_VERSION}/ckpt={sha256_file_memo(labeler.checkpoint)}"
                f"/tok={tokenizer_fingerprint(labeler.tokenizer)[:16]}/arch={arch[:16]}")

    # -- Scorer contract --------------------------------------------------------------------

    def columns(self) -> list[Column]:
        policy = self.params.uncertain
        return label_f1.f1_columns(
            PREFIX, policy,
            display=lambda labels, avg: f"CheXbert {avg}-F1 ({labels})",
            convention=lambda labels, avg: (
                f"CheXbert labels ({UPSTREAM}-compatible); {_POLICY_TEXT[policy]}; "
                f"{avg} F1 over {'the 14 CheXpert observations' if labels == 14 else 'the CheXpert 5'}"
                f", zero_division=0 (sklearn classification_report)"))

    def impl(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"implementation": f"metrics.chexbert v{self.version}", "equivalent_to": UPSTREAM}
        try:
            ckpt = self._checkpoint()
        except WeightsUnavailable as exc:
            facts["unavailable"] = str(exc)
            return facts
        facts["checkpoint"] = str(ckpt)
        facts["checkpoint_sha256"] = sha256_file_memo(ckpt)
        try:
            from importlib import metadata

            from rrg_bench.metrics.chexbert.model import IMPL_VERSION

            facts["labeler_version"] = IMPL_VERSION
            facts["packages"] = {p: metadata.version(p) for p in ("torch", "transformers")}
            tok = self._tokenizer_path()
            facts["tokenizer"] = str(tok)
            vocab = tok if tok.is_file() else tok / "vocab.txt"
            facts["tokenizer_vocab_sha256"] = sha256_file_memo(vocab)
        except (ImportError, WeightsUnavailable) as exc:
            facts["unavailable"] = str(exc)
        facts["config"] = self.params.config or "bert-base-uncased (built in)"
        return facts

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        if not (len(study_ids) == len(hyps) == len(refs)):
            raise ValueError(f"chexbert: {len(study_ids)} study ids, {len(hyps)} hypotheses, {len(refs)} references")
        reason = self.unavailable_reason()
        if reason is not None:
            raise WeightsUnavailable(reason)
        labeler = self.labeler(ctx.device)
        namespace = self.annotation_namespace(labeler)

        def annotate(texts: list[str]) -> list[list[int]]:
            advance = ctx.progress("CheXbert labels", len(texts)) if ctx.progress else None
            return labeler.label(texts, batch_size=ctx.batch_size, advance=advance).tolist()

        n = len(study_ids)
        values, hits, misses = annotate_cached(ctx.cache, namespace, list(refs) + list(hyps), annotate,
                                               normaliser="ws")
        codes = np.asarray(values, dtype=np.int8).reshape(2 * n, len(CHEXPERT_LABELS))
        ref_codes, hyp_codes = codes[:n], codes[n:]
        stats = label_f1.codes_frame(study_ids, ref_codes, hyp_codes)
        notes = [f"labels: {misses} texts annotated, {hits} from the cache (unique texts after whitespace "
                 f"normalisation)"]
        empty = sum(1 for h in hyps if not h.strip())
        if empty:
            notes.append(f"{empty} empty hypotheses labelled as upstream does ([CLS] [SEP] input)")
        return ScoreResult(values=self.aggregate(stats), stats=stats,
                           per_label=label_f1.per_label_values(ref_codes, hyp_codes, self.params.uncertain),
                           cache_hits=hits, cache_misses=misses, notes=notes)

    def per_study(self, stats: pd.DataFrame) -> pd.DataFrame:
        return label_f1.label_samples(stats, self.spec, self.params.uncertain)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        ref, hyp = self._codes(stats)
        return label_f1.summary_values(ref, hyp, self.params.uncertain, PREFIX)

    def rows_aggregate(self, stats: pd.DataFrame) -> RowsAggregate:
        ref, hyp = self._codes(stats)
        return label_f1.rows_summary(ref, hyp, self.params.uncertain, PREFIX)

    @staticmethod
    def _codes(stats: pd.DataFrame) -> tuple[Any, Any]:
        try:
            return label_f1.codes_from_frame(stats)
        except ValueError as exc:
            raise BenchError(f"chexbert: per-study statistics unusable: {exc}") from None
