"""The ``ratescore`` scorer: RaTEScore per report pair (``ratescore`` 0.6.0), mean over pairs.

Per-study statistics are the pair score and its two directed matches, so CIs and paired tests
resample them. Each report's entities (sentence split + NER, the costly part) are cached by
text under the tagger's identity; embeddings are recomputed per report as the package does.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.cache import annotate_cached
from rrg_bench.errors import WeightsUnavailable
from rrg_bench.hashing import sha256_tree

if TYPE_CHECKING:
    import pandas as pd

    from rrg_bench.metrics.ratescore.model import RaTEModels

UPSTREAM = "ratescore==0.6.0 (RaTEScore.compute_score; RadEval `ratescore` vendors the same code)"
IMPL_VERSION = "1"
_MODELS: dict[tuple[str, str, str], RaTEModels] = {}
_LOCK = threading.Lock()


class RaTEScoreParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the package's type-pair weight table (``long``: its default and RadEval's)
    affinity: Literal["long", "short"] = "long"
    #: local model directories (locations: not in the spec; their sha256 is in ``impl``)
    ner_dir: str | None = None
    embed_dir: str | None = None


class RaTEScoreScorer(Scorer):
    """RaTEScore: entity-aware similarity of hypothesis and reference, mean over pairs."""

    name = "ratescore"
    version = "1"
    Params = RaTEScoreParams
    params: RaTEScoreParams

    @property
    def spec(self) -> str:
        return f"{self.name}[affinity={self.params.affinity}]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {"affinity": self.params.affinity},
                "impl": self.impl()}

    def columns(self) -> list[Column]:
        return [Column(id=self.spec, display="RaTEScore",
                       convention=(f"RaTE-NER-Deberta entities per medspaCy/PyRuSH sentence, BioLORD-2023-C [CLS] "
                                   f"embeddings, weighted top-1 cosine both ways with the {self.params.affinity!r} "
                                   f"affinity matrix, harmonic mean; 0.5 when either report has no entity; mean over "
                                   f"pairs ({UPSTREAM})"))]

    def _dirs(self) -> tuple[Path, Path]:
        from rrg_bench import weights

        return (weights.resolve("rate-ner-deberta", self.params.ner_dir),
                weights.resolve("biolord-2023-c", self.params.embed_dir))

    def unavailable_reason(self) -> str | None:
        from importlib.util import find_spec

        from rrg_bench import weights

        missing = [m for m in ("torch", "transformers", "medspacy") if find_spec(m) is None]
        if missing:
            return (f"ratescore needs {', '.join(missing)} (medspacy provides RaTEScore's PyRuSH sentence splitter; "
                    f"see the card for installing it next to numpy 2)")
        missing_weights = []
        for name, explicit in (("rate-ner-deberta", self.params.ner_dir), ("biolord-2023-c", self.params.embed_dir)):
            try:
                weights.resolve(name, explicit)
            except WeightsUnavailable as exc:
                missing_weights.append(str(exc))
        return " ".join(missing_weights) or None

    def impl(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"implementation": f"metrics.ratescore v{IMPL_VERSION}", "equivalent_to": UPSTREAM}
        facts["packages"] = {p: _version(p) for p in ("torch", "transformers", "medspacy", "PyRuSH", "spacy")}
        try:
            ner, emb = self._dirs()
        except WeightsUnavailable as exc:
            facts["unavailable"] = str(exc)
            return facts
        facts["ner_files_sha256"] = sha256_tree(ner)
        facts["embed_files_sha256"] = sha256_tree(emb)
        return facts

    def models(self, device: str) -> RaTEModels:
        from rrg_bench.metrics.ratescore.model import RaTEModels

        ner, emb = self._dirs()
        key = (str(ner.resolve()), str(emb.resolve()), device)
        with _LOCK:
            if key not in _MODELS:
                _MODELS.clear()
                _MODELS[key] = RaTEModels(ner, emb, device)
            return _MODELS[key]

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        from rrg_bench.metrics.ratescore.model import affinity, pair_score, sentence_split

        n = self.checked_count(study_ids, hyps, refs, unavailable=WeightsUnavailable)
        models = self.models(ctx.device)
        ner, _ = self._dirs()
        namespace = f"ratescore/impl={IMPL_VERSION}/split=PyRuSH-{_version('PyRuSH')}/ner={sha256_tree(ner)[:16]}"

        def annotate(texts: list[str]) -> list[list[list[str]]]:
            sentences = [sentence_split(t) for t in texts]
            flat = [s for group in sentences for s in group]
            advance = ctx.progress("RaTE-NER sentences", len(flat)) if ctx.progress else None
            tagged = iter(models.tag(flat, ctx.batch_size, advance))
            return [[[e, k] for _ in group for e, k in next(tagged)] for group in sentences]

        entities, hits, misses = annotate_cached(ctx.cache, namespace, [*refs, *hyps], annotate)
        weights = affinity(self.params.affinity)
        embedded = [(models.embed([e for e, _ in ents]), [k for _, k in ents]) for ents in entities]
        rows = [pair_score(embedded[i], embedded[n + i], weights) for i in range(n)]
        stats = pd.DataFrame(np.asarray(rows, dtype=np.float64).reshape(n, 3), columns=["ratescore", "p", "r"],
                             index=pd.Index(list(study_ids), name="study_id"))
        stats["n_ref_entities"] = [len(e) for e in entities[:n]]
        stats["n_hyp_entities"] = [len(e) for e in entities[n:]]
        notes = [f"entities: {misses} texts tagged, {hits} from the cache"]
        short = sum(1 for t in [*refs, *hyps] if len(t.strip()) < 3)
        if short:
            notes.append(f"{short} empty or near-empty texts have no sentence: no entities, pair score 0.5 "
                         f"(the package would drop them and misalign every later pair)")
        return ScoreResult(values=self.aggregate(stats), stats=stats, cache_hits=hits, cache_misses=misses,
                           notes=notes)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["ratescore"].to_numpy(dtype=np.float64)
        return {self.spec: float(sum(values.tolist()) / len(values)) if len(values) else float("nan")}


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
