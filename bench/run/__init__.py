"""The run pipeline: spec -> topology -> generate -> score -> record, one module per stage."""

from rrg_bench.run.pipeline import RunResult, generate_only, load_dataset, run, score_file
from rrg_bench.run.spec import RunOptions, RunSpec

__all__ = ["RunOptions", "RunResult", "RunSpec", "generate_only", "load_dataset", "run", "score_file"]
