"""RadEval's text-overlap numbers: ``bleu`` (and ``bleu_1..3``) and ``rouge1/rouge2/rougeL``.

Why a scorer of its own and not ``nlg``: RadEval feeds pycocoevalcap's ``BleuScorer`` the raw
report split on whitespace (case and punctuation kept, no PTB tokeniser), and its ROUGE is
Google's ``rouge_score`` F1 (lower-cased, Porter-stemmed, β=1), not pycocoevalcap's ROUGE-L
(β=1.2). Both are different numbers from ``nlg[tok=ptb]``'s, so they get their own column ids
(``bleu4[tok=whitespace]``, ``rougeL[rouge_score,stem=true]``) and never share a column with
ours. The BLEU counts per study are kept, so a bootstrap replays pycocoevalcap's corpus formula
(``nlg.maths.bleu_from_counts``) on any resample; ROUGE is a mean of per-pair F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.errors import ToolUnavailable
from rrg_bench.metrics.nlg.maths import BLEU_COLS, BLEU_N, bleu_from_counts

if TYPE_CHECKING:
    import pandas as pd

UPSTREAM = "radeval==2.2.1 (metrics/bleu, metrics/rouge)"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
ROUGE_DISPLAY = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
BLEU_IDS = tuple(f"bleu{n}[tok=whitespace]" for n in range(1, BLEU_N + 1))
ROUGE_IDS = tuple(f"{t}[rouge_score,stem=true]" for t in ROUGE_TYPES)
#: RadEval's output key of each column (``bleu`` is BLEU-4)
RADEVAL_KEYS = dict(zip((*BLEU_IDS, *ROUGE_IDS), ("bleu_1", "bleu_2", "bleu_3", "bleu", *ROUGE_TYPES)))


def whitespace_bleu_counts(hyps: Sequence[str], refs: Sequence[str]) -> list[list[int]]:
    """Per pair (testlen, reflen, guess_1..4, correct_1..4) as pycocoevalcap's ``BleuScorer``
    counts them from RadEval's ``precook``: ``text.split()``, nothing else."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=BLEU_N)
    for hyp, ref in zip(hyps, refs):
        scorer += (hyp, [ref])
    rows = []
    for comps in scorer.ctest:
        reflen = scorer._single_reflen(comps["reflen"], "closest", comps["testlen"])
        rows.append([comps["testlen"], reflen, *comps["guess"], *comps["correct"]])
    return rows


def rouge_f1(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, list[float]]:
    """``RougeScorer(["rouge1","rouge2","rougeL"], use_stemmer=True).score(ref, hyp)[t].fmeasure``."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(ref, hyp) for ref, hyp in zip(refs, hyps)]
    return {t: [float(s[t].fmeasure) for s in scores] for t in ROUGE_TYPES}


class RadEvalTextScorer(Scorer):
    """RadEval's corpus BLEU-1..4 on whitespace tokens and rouge_score ROUGE-1/2/L F1 (means)."""

    name = "radeval_text"
    version = "1"

    def columns(self) -> list[Column]:
        bleu = [Column(id=cid, display=f"BLEU-{n} (RadEval)",
                       convention=(f"corpus BLEU-{n}, pycocoevalcap 1.2 BleuScorer on raw text split on whitespace "
                                   "(case and punctuation kept), option='closest' (RadEval `bleu`"
                                   f"{'' if n == 4 else f'_{n}'})"))
                for n, cid in enumerate(BLEU_IDS, start=1)]
        rouge = [Column(id=cid, display=f"{ROUGE_DISPLAY[t]} (RadEval)",
                        convention=(f"rouge_score RougeScorer {t} F1 (beta=1), lower-cased, Porter-stemmed, "
                                    f"mean over studies (RadEval `{t}`)"))
                 for t, cid in zip(ROUGE_TYPES, ROUGE_IDS)]
        return [*bleu, *rouge]

    def unavailable_reason(self) -> str | None:
        from importlib.util import find_spec

        if find_spec("rouge_score") is None:
            return "radeval_text needs rouge_score for ROUGE-1/2/L: pip install 'rouge-score==0.1.2'"
        return None

    def impl(self) -> dict[str, Any]:
        from importlib import metadata

        facts: dict[str, Any] = {"implementation": f"metrics.radeval_text v{self.version}", "equivalent_to": UPSTREAM}
        for package in ("pycocoevalcap", "rouge-score", "nltk"):
            try:
                facts.setdefault("packages", {})[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                facts.setdefault("packages", {})[package] = None
        return facts

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        self.checked_count(study_ids, hyps, refs, unavailable=ToolUnavailable)
        counts = np.asarray(whitespace_bleu_counts(hyps, refs), dtype=np.float64).reshape(len(hyps), len(BLEU_COLS))
        columns: dict[str, Any] = dict(zip(BLEU_COLS, counts.T))
        columns.update({t: np.asarray(v, dtype=np.float64) for t, v in rouge_f1(hyps, refs).items()})
        stats = pd.DataFrame(columns, index=pd.Index(list(study_ids), name="study_id"))
        return ScoreResult(values=self.aggregate(stats), stats=stats)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        if len(stats) == 0:
            raise ValueError("radeval_text: cannot aggregate zero studies")
        sums = stats.loc[:, list(BLEU_COLS)].to_numpy(dtype=np.float64).sum(axis=0)
        bleu = bleu_from_counts(sums[0], sums[1], sums[2:2 + BLEU_N], sums[2 + BLEU_N:])
        rouge = [float(stats[t].to_numpy(dtype=np.float64).mean()) for t in ROUGE_TYPES]
        return dict(zip((*BLEU_IDS, *ROUGE_IDS), [float(b) for b in bleu] + rouge))


def per_sample_bleu4(stats: pd.DataFrame) -> list[float]:
    """RadEval's ``per_sample`` BLEU: each study's own BLEU-4 (its own brevity penalty)."""
    rows = stats.loc[:, list(BLEU_COLS)].to_numpy(dtype=np.float64)
    return [bleu_from_counts(r[0], r[1], r[2:2 + BLEU_N], r[2 + BLEU_N:])[-1] for r in rows]
