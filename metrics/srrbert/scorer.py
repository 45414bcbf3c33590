"""The ``srrbert`` scorer: RadEval's SRR-BERT weighted precision, recall and F1.

Each report is split into sentences (RadEval's rules + NLTK punkt), every sentence is labelled
by SRR-BERT (163 finding × status labels), and a report's labels are the OR of its sentences'.
The numbers are sklearn's ``weighted avg`` over labels of those report vectors (references as
truth). Per-study statistics are the two label vectors, so any resample recomputes the corpus
values without the model; each text's vector is cached.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.cache import annotate_cached
from rrg_bench.errors import WeightsUnavailable
from rrg_bench.hashing import sha256_file_memo, sha256_tree
from rrg_bench.metrics.srrbert import labels as L

if TYPE_CHECKING:
    import pandas as pd

    from rrg_bench.metrics.srrbert.model import SRRBertClassifier

UPSTREAM = "radeval==2.2.1 metrics/SRRBert (model_type='leaves_with_statuses')"
IMPL_VERSION = "1"
COLUMNS = (("f1", "F1"), ("precision", "precision"), ("recall", "recall"))
_MODELS: dict[tuple[str, str, str], SRRBertClassifier] = {}
_LOCK = threading.Lock()
PUNKT_HINT = "python -m nltk.downloader punkt_tab (or put punkt_tab under a folder on NLTK_DATA)"


class SRRBertParams(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    #: local directories (locations: not in the spec; their sha256 is in ``impl``)
    model_dir: str | None = None
    tokenizer_dir: str | None = None


def punkt_dir() -> Path:
    """NLTK's english punkt_tab parameters (RadEval downloads them at every start; we never do)."""
    import nltk

    try:
        return Path(nltk.data.find("tokenizers/punkt_tab/english/"))
    except LookupError:
        raise WeightsUnavailable(f"srrbert needs NLTK's punkt_tab sentence splitter data: {PUNKT_HINT}") from None


class SRRBertScorer(Scorer):
    """SRR-BERT label F1 (and P, R), weighted by reference support, over the evaluated reports."""

    name = "srrbert"
    version = "1"
    Params = SRRBertParams
    params: SRRBertParams

    @property
    def spec(self) -> str:
        return self.name

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {}, "impl": self.impl()}

    def columns(self) -> list[Column]:
        return [Column(id=f"srrbert_weighted_{key}", display=f"SRR-BERT weighted {disp}",
                       convention=(f"SRR-BERT-Leaves-with-Statuses labels (163, sigmoid > 0.5) per RadEval/punkt "
                                   f"sentence, OR-ed per report; sklearn classification_report weighted-avg {disp} "
                                   f"over labels, references as truth, zero_division=0 ({UPSTREAM})"))
                for key, disp in COLUMNS]

    def _dirs(self) -> tuple[Path, Path]:
        from rrg_bench import weights

        return (weights.resolve("srr-bert-leaves-with-statuses", self.params.model_dir),
                weights.resolve("cxr-bert-general-tokenizer", self.params.tokenizer_dir))

    def unavailable_reason(self) -> str | None:
        from importlib.util import find_spec

        missing = [m for m in ("torch", "transformers", "nltk", "sklearn") if find_spec(m) is None]
        if missing:
            return f"srrbert needs {', '.join(missing)}: pip install 'rrg-bench[models]' nltk"
        from rrg_bench import weights

        problems = []
        for name, explicit in (("srr-bert-leaves-with-statuses", self.params.model_dir),
                               ("cxr-bert-general-tokenizer", self.params.tokenizer_dir)):
            try:
                weights.resolve(name, explicit)
            except WeightsUnavailable as exc:
                problems.append(str(exc))
        try:
            punkt_dir()
        except WeightsUnavailable as exc:
            problems.append(str(exc))
        return " ".join(problems) or None

    def impl(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"implementation": f"metrics.srrbert v{IMPL_VERSION}", "equivalent_to": UPSTREAM,
                                 "mapping_sha256": sha256_file_memo(L.MAPPING_FILE)}
        try:
            model, tok = self._dirs()
            facts["model_files_sha256"] = sha256_tree(model)
            facts["tokenizer_files_sha256"] = sha256_tree(tok)
            facts["punkt_sha256"] = sha256_tree(punkt_dir())
        except WeightsUnavailable as exc:
            facts["unavailable"] = str(exc)
        return facts

    def classifier(self, device: str) -> SRRBertClassifier:
        from rrg_bench.metrics.srrbert.model import SRRBertClassifier

        model, tok = self._dirs()
        key = (str(model.resolve()), str(tok.resolve()), device)
        with _LOCK:
            if key not in _MODELS:
                _MODELS.clear()
                _MODELS[key] = SRRBertClassifier(model, tok, len(L.label_names()), device)
            return _MODELS[key]

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        n = self.checked_count(study_ids, hyps, refs, unavailable=WeightsUnavailable)
        clf = self.classifier(ctx.device)
        model, tok = self._dirs()
        namespace = (f"srrbert/impl={IMPL_VERSION}/model={sha256_tree(model)[:16]}/tok={sha256_tree(tok)[:16]}"
                     f"/punkt={sha256_tree(punkt_dir())[:16]}")

        def annotate(texts: list[str]) -> list[str]:
            sentences = [L.split_sentences(t) for t in texts]
            flat = [s for group in sentences for s in group]
            advance = ctx.progress("SRR-BERT sentences", len(flat)) if ctx.progress else None
            bits = clf.classify(flat, ctx.batch_size, advance)
            out, start = [], 0
            for group in sentences:  # every report has at least one sentence ("." when empty)
                # numpy's stubs type any(keepdims=True) as ``np.bool | ndarray``; it is always an array
                report_bits = bits[start:start + len(group)].any(axis=0, keepdims=True)
                out.append(L.encode(report_bits)[0])  # type: ignore[arg-type]
                start += len(group)
            return out

        vectors, hits, misses = annotate_cached(ctx.cache, namespace, [*refs, *hyps], annotate)
        stats = pd.DataFrame({"ref_labels": vectors[:n], "hyp_labels": vectors[n:]},
                             index=pd.Index(list(study_ids), name="study_id"))
        ref, hyp = L.decode(stats["ref_labels"]), L.decode(stats["hyp_labels"])
        for key, values in L.per_sample(ref, hyp).items():
            stats[f"sample_{key}"] = values
        return ScoreResult(values=self.aggregate(stats), stats=stats, per_label=L.per_label(ref, hyp),
                           cache_hits=hits, cache_misses=misses,
                           notes=[f"labels: {misses} texts classified, {hits} from the cache"])

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        prf = L.weighted_prf(L.decode(stats["ref_labels"]), L.decode(stats["hyp_labels"]))
        return {f"srrbert_weighted_{key}": prf[key] for key, _ in COLUMNS}
