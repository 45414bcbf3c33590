"""The ``green`` scorer: GREEN as RadEval computes it, mean and (population) std over pairs.

The judge writes an analysis per (reference, candidate) prompt; the counts read back from it
are the per-study statistics (matched findings, significant errors (a)-(f)), so CIs and
paired tests never run the LLM again. Each prompt's analysis is cached by the prompt text.
A 7B judge on CPU is not a use case: see the card for the GPU it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.cache import annotate_cached
from rrg_bench.errors import WeightsUnavailable
from rrg_bench.hashing import sha256_tree
from rrg_bench.metrics.green import parse

if TYPE_CHECKING:
    import pandas as pd

UPSTREAM = "radeval==2.2.1 metrics/green_score (after Stanford-AIMI/GREEN)"
IMPL_VERSION = "1"
ERROR_COLUMNS = tuple(f"sig_{k[1]}" for k in parse.ERROR_KINDS)  # sig_a .. sig_f
_JUDGES: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


class GreenParams(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    #: prompt + answer tokens (RadEval: ``max_length=2048`` in ``generate``)
    max_length: int = Field(default=2048, ge=16)
    #: ``transformers`` (RadEval's path) or ``vllm`` (same greedy decoding, when installed)
    backend: Literal["transformers", "vllm"] = "transformers"
    #: prompts generated together (RadEval: 8); not in the spec
    batch_size: int = Field(default=8, ge=1)
    #: local model directory (a location: not in the spec; its sha256 is in ``impl``)
    model_dir: str | None = None


class GreenScorer(Scorer):
    """GREEN: matched findings / (matched + clinically significant errors), per pair; mean and std."""

    name = "green"
    version = "1"
    Params = GreenParams
    params: GreenParams

    @property
    def spec(self) -> str:
        return self.name if self.params.max_length == 2048 else f"{self.name}[max_length={self.params.max_length}]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {"max_length": self.params.max_length},
                "impl": self.impl()}

    def columns(self) -> list[Column]:
        how = (f"GREEN-RadLlama2-7b greedy analysis of the authors' prompt (reports cut to 300 words), "
               f"max_length {self.params.max_length}; per pair matched/(matched + significant errors (a)-(f)), "
               f"0 when nothing matched ({UPSTREAM})")
        suffix = self.spec[len(self.name):]
        return [Column(id=self.spec, display="GREEN", convention=f"{how}; mean over pairs"),
                Column(id=f"green_std{suffix}", display="GREEN std",
                       convention=f"{how}; population standard deviation over pairs (numpy std, ddof=0)")]

    def model_dir(self) -> Path:
        from rrg_bench import weights

        return weights.resolve("green-radllama2-7b", self.params.model_dir)

    def unavailable_reason(self) -> str | None:
        from importlib.util import find_spec

        needed = ("torch", "transformers") + (("vllm",) if self.params.backend == "vllm" else ())
        missing = [m for m in needed if find_spec(m) is None]
        if missing:
            return f"green needs {', '.join(missing)}"
        try:
            self.model_dir()
        except WeightsUnavailable as exc:
            return str(exc)
        return None

    def impl(self) -> dict[str, Any]:
        from importlib import metadata

        facts: dict[str, Any] = {"implementation": f"metrics.green v{IMPL_VERSION}", "equivalent_to": UPSTREAM,
                                 "backend": self.params.backend}
        try:
            facts["packages"] = {p: metadata.version(p) for p in ("torch", "transformers")}
            facts["model_files_sha256"] = sha256_tree(self.model_dir())
        except (metadata.PackageNotFoundError, WeightsUnavailable) as exc:
            facts["unavailable"] = str(exc)
        return facts

    def judge(self, device: str) -> Any:
        from rrg_bench.metrics.green.model import TransformersJudge, VLLMJudge

        model_dir = self.model_dir()
        key = (str(model_dir.resolve()), device, self.params.backend)
        with _LOCK:
            if key not in _JUDGES:
                _JUDGES.clear()
                cls = VLLMJudge if self.params.backend == "vllm" else TransformersJudge
                _JUDGES[key] = cls(model_dir, device)
            return _JUDGES[key]

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        self.checked_count(study_ids, hyps, refs, unavailable=WeightsUnavailable)
        judge = self.judge(ctx.device)
        namespace = (f"green/impl={IMPL_VERSION}/model={sha256_tree(self.model_dir())[:16]}"
                     f"/max_length={self.params.max_length}")
        prompts = [parse.make_prompt(r, h) for r, h in zip(refs, hyps)]

        def annotate(todo: list[str]) -> list[str]:
            advance = ctx.progress("GREEN judge", len(todo)) if ctx.progress else None
            return judge.respond(todo, batch_size=self.params.batch_size, max_length=self.params.max_length,
                                 advance=advance)

        answers, hits, misses = annotate_cached(ctx.cache, namespace, prompts, annotate)
        stats = stats_frame(study_ids, answers)
        return ScoreResult(values=self.aggregate(stats), stats=stats, cache_hits=hits, cache_misses=misses,
                           notes=[f"judge: {misses} prompts generated, {hits} from the cache"])

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        values = stats["green"].to_numpy(dtype=np.float64)
        suffix = self.spec[len(self.name):]
        return {self.spec: float(np.mean(values)), f"green_std{suffix}": float(np.std(values))}


def stats_frame(study_ids: Sequence[str], answers: Sequence[str]) -> pd.DataFrame:
    """Per study: the GREEN score, matched findings and the six significant error counts."""
    import pandas as pd

    rows = []
    for text in answers:
        matched, errors = parse.matched_findings(text), parse.error_counts(text)
        rows.append([parse.green_score(matched, errors), matched, *errors])
    return pd.DataFrame(np.asarray(rows, dtype=np.float64).reshape(len(rows), 2 + len(ERROR_COLUMNS)),
                        columns=["green", "matched", *ERROR_COLUMNS], index=pd.Index(list(study_ids), name="study_id"))
