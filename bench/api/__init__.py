"""The contracts a plugin implements: generators, scorers, datasets, suites, trainers, preparers.

Everything here is light to import (pydantic and the standard library only), so a plugin's
module can be listed by ``bench ls`` without loading torch.

>>> from rrg_bench.api import Generation
>>> Generation("s1", "No acute findings.").text
'No acute findings.'
"""

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.api.generator import Generator, GeneratorContext, study_seed
from rrg_bench.api.params import NoParams, validated
from rrg_bench.api.preparer import Preparer, PrepareReport, PrepareRequest
from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.api.suite import Suite
from rrg_bench.api.training import TrainRequest
from rrg_bench.api.types import Generation, Study

__all__ = [
    "Column", "Dataset", "Generation", "Generator", "GeneratorContext", "NoParams", "PrepareReport",
    "PrepareRequest", "Preparer", "ScoreResult", "Scorer", "ScoringContext", "Study", "Suite", "TrainRequest",
    "VerifyReport", "study_seed", "validated",
]
