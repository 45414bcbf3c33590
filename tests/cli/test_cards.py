"""Every registered generator, metric and dataset has a card that `bench ls --card` prints."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rrg_bench.cli import _card_paths, app
from rrg_bench.registry import registry


@pytest.mark.parametrize("kind", ["generators", "metrics", "datasets"])
def test_every_registered_name_has_a_card(kind):
    missing = [name for name in registry(kind).names() if not _card_paths(kind, name)]
    assert missing == [], f"{kind} without a card: {missing}"


def test_card_lookup_by_scorer_name_and_unknown_names():
    runner = CliRunner()
    nlg = runner.invoke(app, ["ls", "metrics", "--card", "nlg"])
    assert nlg.exit_code == 0 and "BLEU" in nlg.output and "METEOR" in nlg.output and "CIDEr" in nlg.output
    unknown = runner.invoke(app, ["ls", "--card", "nope"])
    assert unknown.exit_code == 2 and "chexbert_f1" in unknown.output and "anat_attn" in unknown.output
