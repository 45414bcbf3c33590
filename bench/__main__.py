"""``python -m bench`` (and ``accelerate launch -m bench``) runs the CLI."""

from bench.cli import main

main()
