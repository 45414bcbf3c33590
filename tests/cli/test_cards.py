"""Every registered entry of every kind has a card that `bench ls --card` prints."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rrg_bench.cli import app
from rrg_bench.registry import KINDS, registry


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_registered_name_has_a_card(kind):
    reg = registry(kind)
    missing = [name for name in reg.names() if not ((path := reg.card(name)) and path.is_file())]
    assert missing == [], f"{kind} without a card: {missing}"


def test_card_lookup_by_scorer_name_and_unknown_names():
    runner = CliRunner()
    nlg = runner.invoke(app, ["ls", "metrics", "--card", "nlg"])
    assert nlg.exit_code == 0 and "BLEU" in nlg.output and "METEOR" in nlg.output and "CIDEr" in nlg.output
    unknown = runner.invoke(app, ["ls", "--card", "nope"])
    assert unknown.exit_code == 2 and "chexbert" in unknown.output and "anat_attn" in unknown.output
