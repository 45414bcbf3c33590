"""`bench data verify` names the study whose reference was edited in a copy of the IU data."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from rrg_bench.cli import app


def test_verify_names_the_edited_study(iu_root, tmp_path):
    copy = tmp_path / "iu_xray"
    copy.mkdir()
    annotation = json.loads((iu_root / "annotation.json").read_text())
    victim = annotation["test"][17]
    victim["report"] = victim["report"].replace(".", "!", 1)
    (copy / "annotation.json").write_text(json.dumps(annotation))
    for extra in ("indiana_projections.csv",):
        if (iu_root / extra).exists():
            shutil.copy(iu_root / extra, copy / extra)
    result = CliRunner().invoke(app, ["data", "verify", "--dataset", "iu_xray/r2gen", "--data-root", str(copy)])
    assert result.exit_code == 1, result.output
    assert victim["id"] in result.output
    others = [e["id"] for e in annotation["test"] if e["id"] != victim["id"]]
    assert not any(o in result.output for o in others[:50])


def test_verify_on_the_shared_copy_is_clean(iu_root):
    result = CliRunner().invoke(app, ["data", "verify", "--dataset", "iu_xray/r2gen", "--data-root", str(iu_root)])
    assert result.exit_code == 0, result.output
