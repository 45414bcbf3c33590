"""``python -m rrg_bench`` (and ``accelerate launch -m rrg_bench``) runs the CLI."""

from rrg_bench.cli import main

main()
