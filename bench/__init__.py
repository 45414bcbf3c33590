"""rrg-bench: a reproducible benchmark harness for chest X-ray report generation.

Importing this package is cheap on purpose: no torch, no transformers, no pandas. The CLI
starts in well under a second and heavy libraries load only inside the command that needs them.
"""

__version__ = "0.1.0"

#: bump when the results record schema changes shape
RECORD_SCHEMA = "bench.results/1"
