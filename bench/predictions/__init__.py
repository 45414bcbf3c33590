"""Predictions: our own journalled JSONL (``jsonl``), other people's files (``external``), and the
join of predictions to a split's studies by id (``align``)."""

from rrg_bench.predictions.align import Alignment, align
from rrg_bench.predictions.external import LONG_REPORT_CHARS, ExternalPrediction, read_external
from rrg_bench.predictions.jsonl import PredictionsWriter, encode_line, read_unverified, recover, write_ordered

__all__ = ["Alignment", "ExternalPrediction", "LONG_REPORT_CHARS", "PredictionsWriter", "align", "encode_line",
           "read_external", "read_unverified", "recover", "write_ordered"]
