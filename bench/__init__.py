"""rrg-bench: a reproducible benchmark harness for chest X-ray report generation.

The Python API is two functions (imported lazily, so ``import rrg_bench`` stays cheap: no
torch, no transformers, no pandas until one is called):

- ``rrg_bench.score(hyps, refs, metrics="nlg")`` scores aligned texts and returns every metric
  with its 95% CI (``.to_dict()`` keyed by metric id);
- ``rrg_bench.evaluate(model=..., dataset=..., split=...)`` does what ``bench run`` does and
  returns the results record;
- ``rrg_bench.samples(run_or_record)`` returns the per-study texts and values as a DataFrame.

The contracts a plugin implements are in ``rrg_bench.api``.
"""

from typing import Any

__version__ = "0.2.0"

__all__ = ["__version__", "evaluate", "samples", "score"]


def __getattr__(name: str) -> Any:
    if name in {"score", "evaluate", "samples"}:
        from rrg_bench import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module 'rrg_bench' has no attribute {name!r}")
