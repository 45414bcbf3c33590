"""Results records: the schema, append-only writing, and reading a record or a run's records.

Compare, table and leaderboard all read records through this package.
"""

from rrg_bench.records.io import RECORD_FILE, load_record, publish_record_dir, write_record_file
from rrg_bench.records.loaded import LoadedRecord, StatsUnavailable, load_stats, locate_stats
from rrg_bench.records.runs import RECORDS_DIR, is_full, load_any, record_files, union_view
from rrg_bench.records.schema import (
                                      READABLE_SCHEMAS,
                                      RECORD_SCHEMA,
                                      MetricValue,
                                      PredictionsInfo,
                                      ResultsRecord,
                                      Status,
)

__all__ = [
    "LoadedRecord", "MetricValue", "PredictionsInfo", "READABLE_SCHEMAS", "RECORDS_DIR", "RECORD_FILE",
    "RECORD_SCHEMA", "ResultsRecord", "StatsUnavailable", "Status", "is_full", "load_any", "load_record",
    "load_stats", "locate_stats", "publish_record_dir", "record_files", "union_view", "write_record_file",
]
