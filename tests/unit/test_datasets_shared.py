"""What the dataset families share: one identity block, one ReXrank JSON reader, one way a
locally prepared folder is checked, and `bench data verify` saying how to get the data once."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from rrg_bench.cli import app
from rrg_bench.datasets.rexrank_json import prediction_key, read_rexrank_json, rexrank_studies
from rrg_bench.errors import DataError, PredictionsError
from rrg_bench.manifests import identity_block, load_manifest
from rrg_bench.registry import registry

# ----------------------------------------------------------------------------- identity block


def test_identity_block_is_the_manifests_and_says_none_before_the_studies_are_known():
    manifest = load_manifest("demo")
    rows = manifest.rows("test")
    assert identity_block(manifest, "test", rows) == manifest.identity("test")
    unknown = identity_block(manifest, "test", None, name="demo/other", reference_policy="other")
    assert list(unknown) == list(manifest.identity("test"))  # same keys, same order
    assert (unknown["name"], unknown["reference_policy"]) == ("demo/other", "other")
    assert unknown["n_expected"] is unknown["study_ids_sha256"] is unknown["references_sha256"] is None


# ----------------------------------------------------------------------------- ReXrank JSON


def test_one_reader_for_reXrank_files_names_the_study_and_field(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"s1": {"section_findings": "A.", "section_impression": NaN}, "s2": {"section_findings": "B."}}')
    with pytest.raises(DataError, match=r"r.json:study s2: missing field 'section_impression' \(fields present: "
                                        r"section_findings\)"):
        read_rexrank_json(path)
    data = read_rexrank_json(path, required=("section_findings",))
    assert list(data) == ["s1", "s2"]  # file order is study order
    path.write_text('{"s1": ')
    with pytest.raises(DataError, match=r"r.json:1: not valid JSON"):
        read_rexrank_json(path)
    with pytest.raises(DataError, match=r"cannot be read"):
        read_rexrank_json(tmp_path / "absent.json")
    with pytest.raises(DataError, match=r"expected ReXrank's object keyed by study id"):
        rexrank_studies([1, 2], path)
    with pytest.raises(PredictionsError, match=r"study s1: expected an object with 'model_prediction', got str"):
        rexrank_studies({"s1": "text"}, path, required=(prediction_key("report"),), error=PredictionsError)
    assert prediction_key("report") == "model_prediction" and prediction_key("alt") == "alt"


# ----------------------------------------------------------------------------- prepared folders


def _chexpert_folder(tmp_path):
    import pandas as pd

    source = tmp_path / "chexpertplus"
    source.mkdir()
    rows = [{"path_to_image": "valid/patient1/study1/view1_frontal.jpg", "frontal_lateral": "Frontal",
             "section_findings": "Clear.", "section_impression": "Normal."}]
    pd.DataFrame(rows).to_csv(source / "df_chexpert_plus_240401.csv", index=False)
    return source


def test_a_folder_prepared_for_another_manifest_is_refused_with_the_command_to_run(tmp_path):
    from rrg_bench.datasets.chexpert_plus.rexrank import CheXpertPlusRexrank, prepare_chexpert_plus_rexrank

    out = tmp_path / "data" / "chexpert_plus" / "rexrank"
    prepare_chexpert_plus_rexrank(_chexpert_folder(tmp_path), out, check_counts=False)
    dataset = CheXpertPlusRexrank(tmp_path / "data")
    assert dataset.verify().present[0] == f"prepared data: {out} (official: False)"
    manifest = out / "manifest.yaml"
    manifest.write_text(re.sub(r"committed_manifest_sha256: \w+", "committed_manifest_sha256: 0", manifest.read_text()))
    with pytest.raises(DataError, match=r"was prepared for chexpert_plus/rexrank manifest v1 .*"
                                        r"run `bench data prepare chexpert_plus/rexrank` again"):
        CheXpertPlusRexrank(tmp_path / "data").studies("test")
    assert CheXpertPlusRexrank(tmp_path / "data").identity("test")["n_expected"] is None
    with pytest.raises(DataError, match=r"has only the split 'test' \(CheXpert's valid/ folder\); got 'val'"):
        dataset.studies("val")


# ----------------------------------------------------------------------------- bench data verify


def test_verify_says_how_to_get_each_missing_dataset_once(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    result = CliRunner().invoke(app, ["data", "verify", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output  # missing data is reported, not an error
    blocks = {block.split()[0]: block for block in re.split(r"^[✓✗] ", result.output, flags=re.M) if block}
    datasets = registry("datasets")
    for name in datasets.names():
        report = datasets.get(name)(tmp_path).verify()
        if report.ok:
            continue
        assert report.missing and not any(report.how_to_get in line for line in report.missing), name
        assert blocks[name].count(report.how_to_get) == 1, blocks[name]


def test_how_to_get_texts_name_commands_that_exist():
    preparers = set(registry("preparers").names()) | {"mimic_cxr"}  # the CLI's alias for mimic_cxr/official
    datasets = registry("datasets")
    for name in datasets.names():
        text = datasets.get(name)(None).verify().how_to_get
        assert "bench.datasets." not in text and "(PHYSIONET_DIR" not in text, name  # a command, not a function
        for command in re.findall(r"`bench data prepare (\S+)", text):
            assert command in preparers, (name, command)
    for name in ("mimic_cxr/rexrank", "chexpert_plus/rexrank"):
        assert f"`bench data prepare {name} " in datasets.get(name)(None).verify().how_to_get


def test_reXrank_predictions_use_the_shared_reader(tmp_path):
    from rrg_bench.predictions import read_external

    path = tmp_path / "sub.json"
    path.write_text(json.dumps({"s1": {"report": "GT", "model_prediction": "P"}, "s2": {"report": "GT"}}))
    with pytest.raises(PredictionsError, match=r"sub.json:study s2: missing field 'model_prediction'"):
        read_external(path)
