"""Key phrases of a report (stage 3's auxiliary target), extracted from that report only.

With RadGraph weights present, the phrases are RadGraph's entities (anatomy and observation spans,
as written in the report); otherwise the CheXpert-rules mentions (``metrics.chexpert_rules``). Both
are substrings of the report they come from — never of another study's — which the tests check.
How the paper extracts them is unknown: source and polarity are switches (CARD.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rrg_bench.errors import BenchError
from rrg_bench.metrics.common.labels import NEGATIVE

Source = Literal["auto", "radgraph", "chexpert_rules"]
Polarity = Literal["all", "present"]
RADGRAPH_MODEL = "radgraph-xl"


def _dedupe(phrases: Sequence[str]) -> list[str]:
    seen, out = set(), []
    for p in phrases:
        p = " ".join(p.split())
        if p and p.lower() not in seen:
            seen.add(p.lower())
            out.append(p)
    return out


def rules_phrases(report: str, polarity: Polarity = "all") -> list[str]:
    """CheXpert-rules mentions of ``report`` (lower-cased spans of its own text), in order."""
    from rrg_bench.metrics.chexpert_rules.labeler import label_mentions

    return _dedupe([m.text for m in label_mentions(report) if polarity == "all" or m.code != NEGATIVE])


def radgraph_phrases(annotation: dict, polarity: Polarity = "all") -> list[str]:
    """Entity spans of one RadGraph annotation, in report order; "present" drops "definitely absent"."""
    entities = sorted(annotation.get("entities", {}).values(), key=lambda e: int(e.get("start_ix", 0)))
    keep = [e for e in entities if polarity == "all" or "absent" not in str(e.get("label", "")).lower()]
    return _dedupe([str(e["tokens"]) for e in keep])


def radgraph_available(model_dir: str | None = None) -> bool:
    from rrg_bench.metrics.radgraph.adapter import locate_model

    try:
        locate_model(RADGRAPH_MODEL, model_dir)
    except BenchError:  # WeightsUnavailable, or a malformed / partial model directory
        return False
    return True


def extract_key_phrases(reports: Sequence[str], source: Source = "auto", polarity: Polarity = "all",
                        radgraph_dir: str | None = None) -> tuple[list[list[str]], str]:
    """(phrases of each report, the source actually used). ``auto`` = RadGraph if its weights are
    present, else CheXpert rules; ``radgraph`` without weights is an error, not a silent fallback."""
    use_radgraph = source == "radgraph" or (source == "auto" and radgraph_available(radgraph_dir))
    if not use_radgraph:
        return [rules_phrases(r, polarity) for r in reports], "chexpert_rules"
    from rrg_bench.metrics.radgraph.adapter import RadGraphAnnotator, locate_model

    annotator = RadGraphAnnotator(locate_model(RADGRAPH_MODEL, radgraph_dir))
    annotations = annotator.annotate(list(reports))
    return [radgraph_phrases(a, polarity) for a in annotations], f"radgraph:{RADGRAPH_MODEL}"


def phrase_vocabulary(phrases: Sequence[Sequence[str]], size: int) -> list[str]:
    """The ``size`` most frequent (lower-cased) phrases of the train reports; ties alphabetical."""
    from collections import Counter

    counts = Counter(p.lower() for ps in phrases for p in set(ps))
    return [p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def multi_hot(phrases: Sequence[str], vocab: Sequence[str]) -> list[float]:
    present = {p.lower() for p in phrases}
    return [1.0 if v in present else 0.0 for v in vocab]
