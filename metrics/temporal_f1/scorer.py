"""The ``temporal_f1`` scorer: RadEval's temporal entity F1 per report pair, mean over pairs.

``ner=stanza`` (default) is RadEval's definition: keyword matches of the regex united with
stanza radiology NER entities that are keywords; ``ner=none`` is the regex alone (offline, no
model), a different column. The per-pair F1 is the per-study statistic (the corpus value is
its mean), and stanza's entities are cached per text, so CIs never re-run stanza.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.cache import annotate_cached
from rrg_bench.errors import WeightsUnavailable
from rrg_bench.metrics.temporal_f1 import stanza_ner
from rrg_bench.metrics.temporal_f1.keywords import keep_ner_entities, regex_entities, tem_f1

if TYPE_CHECKING:
    import pandas as pd

UPSTREAM = "radeval==2.2.1 metrics/f1temporal (from X-iZhang/Libra temporal_f1.py)"


class TemporalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: ``stanza``: RadEval's definition (regex ∪ stanza radiology NER); ``none``: the regex alone
    ner: Literal["stanza", "none"] = "stanza"
    #: stanza model directory (what ``stanza.download`` wrote); a location, so not in the spec
    stanza_dir: str | None = None


class TemporalF1Scorer(Scorer):
    """Set F1 of temporal keywords between hypothesis and reference, mean over pairs."""

    name = "temporal_f1"
    version = "1"
    Params = TemporalParams
    params: TemporalParams

    @property
    def spec(self) -> str:
        return f"{self.name}[ner={self.params.ner}]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {"ner": self.params.ner}, "impl": self.impl()}

    def columns(self) -> list[Column]:
        how = ("keyword regex on RadEval-cleaned text united with stanza en/radiology NER entities "
               "(OBSERVATION, OBSERVATION_MODIFIER) that are keywords" if self.params.ner == "stanza"
               else "keyword regex on RadEval-cleaned text only (no stanza NER: not RadEval's number when stanza "
                    "would add a keyword the regex misses)")
        return [Column(id=self.spec, display="Temporal F1",
                       convention=(f"{how}; per-pair set F1 with epsilon 1e-10 (both empty: 1, reference empty: "
                                   f"1e-10); mean over pairs ({UPSTREAM})"))]

    def unavailable_reason(self) -> str | None:
        if self.params.ner == "none":
            return None
        from importlib.util import find_spec

        if find_spec("stanza") is None:
            return "temporal_f1[ner=stanza] needs stanza: pip install 'stanza>=1.10'"
        try:
            stanza_ner.locate(self.params.stanza_dir)
        except WeightsUnavailable as exc:
            return str(exc)
        return None

    def impl(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"implementation": f"metrics.temporal_f1 v{self.version}", "equivalent_to": UPSTREAM}
        if self.params.ner == "stanza":
            try:
                facts.update(stanza_ner.model_facts(stanza_ner.locate(self.params.stanza_dir)))
            except WeightsUnavailable as exc:
                facts["unavailable"] = str(exc)
        return facts

    def ner_function(self, device: str) -> stanza_ner.NerFunction:
        """The stanza pipeline as a function (tests replace this with a fixed table)."""
        return stanza_ner.load_pipeline(stanza_ner.locate(self.params.stanza_dir), device)

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        n = self.checked_count(study_ids, hyps, refs, unavailable=WeightsUnavailable)
        texts = [*refs, *hyps]
        hits = misses = 0
        found: list[set[str]] = [regex_entities(t) for t in texts]
        if self.params.ner == "stanza":
            ner = self.ner_function(ctx.device)
            facts = stanza_ner.model_facts(stanza_ner.locate(self.params.stanza_dir))
            namespace = f"temporal_f1/stanza={facts['stanza']}/ner={facts['ner_model_sha256'][:16]}"
            entities, hits, misses = annotate_cached(ctx.cache, namespace, texts,
                                                     lambda todo: stanza_ner.annotate(ner, todo))
            found = [f | keep_ner_entities((e[0], e[1]) for e in ents) for f, ents in zip(found, entities)]
        f1 = [tem_f1(found[n + i], found[i]) for i in range(n)]
        stats = pd.DataFrame({"f1": np.asarray(f1, dtype=np.float64),
                              "n_ref": [len(found[i]) for i in range(n)],
                              "n_hyp": [len(found[n + i]) for i in range(n)]},
                             index=pd.Index(list(study_ids), name="study_id"))
        return ScoreResult(values=self.aggregate(stats), stats=stats, cache_hits=hits, cache_misses=misses)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["f1"].to_numpy(dtype=np.float64)
        # RadEval: sum(scores) / len(scores)
        return {self.spec: float(sum(values.tolist()) / len(values)) if len(values) else float("nan")}
