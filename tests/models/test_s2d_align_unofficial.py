"""Issue 17 on a fake MIMIC-CXR tree: s2d_align says it is unofficial (card, record, table, plot, the error
without a checkpoint), its stage-3 budget fits its longest training target, and no training-time
reference comes from the query's own patient.

The PhysioNet tree is tests/helpers/mimic_fake.py's, with reports invented here (no MIMIC text) and
drawn stand-in images; patient 11000001 has two train studies whose radiographs are identical, so
without the patient rule each would be the other's nearest reference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import only_record
from helpers.bench_cli import run_bench
from helpers.mimic_fake import FakeStudy, report, write_tree
from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.training import TrainRequest
from rrg_bench.baselines.common.generation import MAX_REPORT_TOKENS, NEW_TOKENS
from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig
from rrg_bench.baselines.s2d_align.generate import DISPLAY_NAME, S2DAlignGenerator
from rrg_bench.baselines.s2d_align.keyphrases import extract_key_phrases
from rrg_bench.baselines.s2d_align.loading import load_model
from rrg_bench.baselines.s2d_align.presets import resolve_recipe
from rrg_bench.baselines.s2d_align.references import ReferenceIndex, patient_of
from rrg_bench.baselines.s2d_align.train import TRAINING_INFO, build_examples, prepare_examples, train
from rrg_bench.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCES = [
    "The heart size is mildly enlarged.", "There is a small left pleural effusion with adjacent atelectasis.",
    "No pneumothorax is seen.", "Mild pulmonary edema is present in both lungs.",
    "Patchy consolidation in the right lower lobe may reflect pneumonia.",
    "The mediastinal and hilar contours are within normal limits.",
    "A right internal jugular catheter terminates in the lower superior vena cava.",
    "Degenerative changes of the thoracic spine are noted.", "There is no focal consolidation in the left lung.",
    "Linear opacity at the left base likely reflects subsegmental atelectasis.",
    "No acute osseous abnormality or fracture is identified.", "Sternotomy wires are intact and unchanged.",
]
PATIENT = "11000001"  # two train studies of one patient
TWINS = ("50000001", "50000002")


def findings(i: int) -> str:
    """About 110 words: longer than MIMIC-CXR's 100-token report cut under the tiny tokenizer."""
    return " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(len(SENTENCES)))


def fake_studies() -> list[FakeStudy]:
    def study(subject: str, sid: str, split: str, text: str) -> FakeStudy:
        return FakeStudy(subject, sid, split, report(("EXAMINATION", "CHEST (PA AND LAT)"), ("FINDINGS", text),
                                                      ("IMPRESSION", "See findings.")), [(f"d{sid}", "PA")])

    twins = [study(PATIENT, TWINS[0], "train", findings(0)),
             study(PATIENT, TWINS[1], "train", findings(0) + " Findings are unchanged from the prior study.")]
    others = [study(f"110000{i + 1:02d}", f"500000{i + 1:02d}", "train", findings(i)) for i in range(2, 8)]
    held = [study(f"120000{i:02d}", f"510000{i:02d}", split, findings(i + 3))
            for i, split in ((1, "validate"), (2, "validate"), (3, "test"), (4, "test"))]
    return twins + others + held


@pytest.fixture(scope="module")
def mimic(tmp_path_factory):
    """``mimic_cxr/official`` prepared from the fake tree; the twins' images are drawn alike."""
    from rrg_bench.datasets.demo.drawing import seed_for, write_synthetic_images
    from rrg_bench.datasets.mimic_cxr.official import PREPARED_SUBDIR, MimicCxrOfficial
    from rrg_bench.datasets.mimic_cxr.prepare import prepare_mimic_cxr

    base = tmp_path_factory.mktemp("mimic")
    studies = fake_studies()
    tree = write_tree(base / "physionet", studies, jpgs=True)
    for s in studies:
        same_chest = s.study in TWINS
        text = findings(0) if same_chest else s.text
        for dicom, _ in s.images:
            path = tree / "files" / f"p{s.subject[:2]}" / f"p{s.subject}" / f"s{s.study}" / f"{dicom}.jpg"
            write_synthetic_images(text, seed_for(TWINS[0] if same_chest else s.study), path)
    prepare_mimic_cxr(tree, base / "data" / PREPARED_SUBDIR, check_counts=False)
    return MimicCxrOfficial(base / "data")


@pytest.fixture(scope="module")
def curriculum(mimic, tmp_path_factory) -> dict[int, Path]:
    """Stage 1 -> 2 -> 3 (prefix), one step each, with MIMIC-CXR's lengths instead of the tiny preset's."""
    root = tmp_path_factory.mktemp("s2d_mimic")
    (min_new, max_new), report = NEW_TOKENS["mimic_cxr"], MAX_REPORT_TOKENS["mimic_cxr"]
    family = {"max_report_tokens": str(report), "min_new_tokens": str(min_new), "max_new_tokens": str(max_new)}
    checkpoints: dict[int, Path] = {}
    for stage in (1, 2, 3):
        sets = {"epochs": "1", "max_steps": "1", "val_limit": "2",
                **(family if stage == 1 else {"init": str(checkpoints[stage - 1])})}
        checkpoints[stage] = train(TrainRequest(dataset=mimic, output_dir=root / f"stage{stage}", preset="tiny",
                                                stage=stage, progress=False, overrides=sets))
    return checkpoints


# ------------------------------------------------------------------ says what it is
def test_card_and_registry_open_with_the_unofficial_statement():
    from rrg_bench.baselines import GENERATORS
    from rrg_bench.cli import app

    assert S2DAlignGenerator.display_name == DISPLAY_NAME == "S2D-Align (unofficial, from abstract)"
    assert S2DAlignGenerator.unofficial is True
    assert GENERATORS["s2d_align"].summary.startswith(DISPLAY_NAME)
    result = CliRunner().invoke(app, ["ls", "generators", "--card", "s2d_align"])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    assert DISPLAY_NAME in lines[0]
    opening = " ".join(lines[1:4])
    assert opening.startswith("Unofficial, reconstructed from the abstract. No code, no weights")


@pytest.mark.parametrize("command", ["run", "generate"])
def test_without_a_checkpoint_one_line_says_no_weights_were_released_and_how_to_train(command, tmp_path):
    proc = run_bench([command, "--model", "s2d_align", "--dataset", "demo", "--runs-dir", str(tmp_path / "runs")])
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: s2d_align is S2D-Align (unofficial, from abstract)"), lines
    assert "no weights" in lines[0] and "bench train --model s2d_align --stage 1" in lines[0]
    assert "--checkpoint DIR" in lines[0] and "Field required" not in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def record_file(mimic, curriculum, tmp_path_factory) -> Path:
    """`bench run` of the stage-3 checkpoint on the fake test split: its one record."""
    from rrg_bench.cli import app

    runs = tmp_path_factory.mktemp("s2d_runs")
    args = ["run", "--model", "s2d_align", "--checkpoint", str(curriculum[3]), "--dataset", "mimic_cxr/official",
            "--split", "test", "--data-root", str(mimic.data_root), "--metrics", "chexpert_rules", "--n-boot", "0",
            "--no-progress", "--model-arg", "num_beams=1", "--runs-dir", str(runs)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return only_record(runs)


def test_the_record_names_it_unofficial(record_file):
    block = json.loads(record_file.read_text())["generator"]
    assert block["name"] == "s2d_align" and block["display_name"] == DISPLAY_NAME and block["unofficial"] is True


def test_table_rows_show_it_as_unofficial(record_file):
    """The row is named by the record's display name (rrg_bench.leaderboard.table.system_name)."""
    from rrg_bench.cli import app

    table = CliRunner().invoke(app, ["table", str(record_file), "--format", "md", "--n-boot", "0"])
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if line.startswith("|") and "s2d" in line.lower()]
    assert rows and all(DISPLAY_NAME in row for row in rows), table.output


def test_plot_labels_show_it_as_unofficial(record_file):
    from rrg_bench.leaderboard.paper import paper_table
    from rrg_bench.leaderboard.plots import bar_chart
    from rrg_bench.records import load_any

    table = paper_table([load_any(record_file)], n_boot=0)
    files = bar_chart(table, table.columns[0])
    svg = next(data for name, data in files.items() if name.endswith(".svg")).decode()
    assert "S2D-Align (unofficial" in svg  # SVG text stays text; the label may wrap after that


# ------------------------------------------------------------------ the stage-3 budget
def test_stage_3_budget_covers_the_longest_training_target(mimic, curriculum, tmp_path):
    """MIMIC-CXR's 80/120 is the report's budget; a prefix target is phrases + up to 100 report
    tokens + EOS, longer than 120 here, so the phrase list must come on top of it."""
    report_min, report_max = NEW_TOKENS["mimic_cxr"]
    config = S2DAlignConfig.load(curriculum[3])
    assert config.keyphrase_target == "prefix" and config.max_report_tokens == MAX_REPORT_TOKENS["mimic_cxr"]
    assert (config.min_new_tokens, config.max_new_tokens) == (report_min, report_max)
    model, tokenizer = load_model(curriculum[3])
    studies = mimic.studies("train")
    phrases, _ = extract_key_phrases([s.reference for s in studies], config.keyphrase_source.split(":")[0])
    longest = max(len(ex.target) for ex in build_examples(config, tokenizer, studies, [[] for _ in studies], phrases))
    assert longest > report_max  # the old budget would cut the longest target
    fewest, most = config.keyphrase_new_tokens
    decoding = S2DAlignGenerator(checkpoint=str(curriculum[3])).decoding()
    assert decoding["max_new_tokens"] == report_max + most >= longest
    assert decoding["min_new_tokens"] == report_min + fewest and 0 < fewest <= most
    info = json.loads((curriculum[3] / TRAINING_INFO).read_text())["new_tokens"]
    assert info == {"min_new_tokens": report_min + fewest, "max_new_tokens": report_max + most,
                    "report": [report_min, report_max], "keyphrase": [fewest, most]}
    stage2 = S2DAlignGenerator(checkpoint=str(curriculum[2])).decoding()  # no phrases, the report's budget
    assert (stage2["min_new_tokens"], stage2["max_new_tokens"]) == (report_min, report_max)
    explicit = S2DAlignGenerator(checkpoint=str(curriculum[3]), max_new_tokens=50).decoding()
    assert explicit["max_new_tokens"] == 50  # an explicit value is the whole output's budget
    # a resumed stage 3 starts from a config that already holds the phrase budget: recomputed, never added twice
    _, recipe = resolve_recipe(3, "tiny", {"init": str(curriculum[2])})
    request = TrainRequest(dataset=mimic, output_dir=tmp_path, preset="tiny", stage=3)
    prepare_examples(request, recipe, model, tokenizer, studies, [], tmp_path, "cpu")
    assert model.config.keyphrase_new_tokens == (fewest, most) and model.config.new_tokens() == {
        "min_new_tokens": report_min + fewest, "max_new_tokens": report_max + most}
    # a prefix checkpoint from before the fix has no phrase budget: refused, not silently cut
    old = tmp_path / "before_the_fix"
    shutil.copytree(curriculum[3], old)
    saved = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({k: v for k, v in saved.items() if k != "keyphrase_new_tokens"}))
    ctx = GeneratorContext(dataset="mimic_cxr/official", split="test", progress=False)
    with pytest.raises(UsageError, match="train stage 3 again, or pass --model-arg max_new_tokens=N"):
        S2DAlignGenerator(checkpoint=str(old)).setup(ctx)


# ------------------------------------------------------------------ patient-disjoint references
def test_training_references_never_come_from_the_querys_patient(mimic, curriculum, tmp_path):
    from rrg_bench.baselines.knn_image.generate import KnnImage

    train_studies, val = mimic.studies("train"), mimic.studies("val")
    by_id = {s.study_id: s for s in train_studies}
    assert {patient_of(by_id[t]) for t in TWINS} == {PATIENT} and len(train_studies) == 8
    knn = KnnImage()  # the same index without the patient rule: each twin is the other's nearest
    knn.setup(GeneratorContext(dataset="mimic_cxr/official", split="train", train_studies=lambda: train_studies,
                               progress=False))
    twins = [by_id[t] for t in TWINS]
    assert [hits[0][0] for hits in knn.neighbours(twins, 1)] == [TWINS[1], TWINS[0]]

    index = ReferenceIndex(train_studies, split="train")
    for k in (1, len(train_studies)):
        for study, refs in zip(train_studies, index.neighbours(train_studies, k)):
            patients = {patient_of(by_id[r]) for r, _ in refs}
            assert patient_of(study) not in patients and len(refs) == min(k, 6 if study.study_id in TWINS else 7)
    assert "every study of its patient" in index.fingerprint()["selection"]

    # the training path itself: stage 2's examples as `bench train --stage 2` builds them
    _, recipe = resolve_recipe(2, "tiny", {"init": str(curriculum[1])})
    model, tokenizer = load_model(curriculum[2])
    request = TrainRequest(dataset=mimic, output_dir=tmp_path, preset="tiny", stage=2, overrides={})
    examples, _, info = prepare_examples(request, recipe, model, tokenizer, train_studies, val, tmp_path, "cpu")
    assert model.config.references_k == 1 and "every study of its patient" in info["retrieval"]["selection"]
    for ex in examples:
        assert len(ex.references) == 1 and patient_of(by_id[ex.references[0]]) != patient_of(by_id[ex.study_id])
