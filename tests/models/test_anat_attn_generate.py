"""anat_attn as a registered generator: tiny checkpoint, synthetic IU X-Ray images, bench run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from rrg_bench.api.generator import GeneratorContext, study_seed
from rrg_bench.baselines.anat_attn.generate import AnatAttnGenerator
from rrg_bench.baselines.anat_attn.tiny import build_tiny_checkpoint
from rrg_bench.errors import UsageError
from rrg_bench.registry import registry

N_TEST = 5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(iu_train_reports, tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", iu_train_reports, text_positions=48)


@pytest.fixture(scope="module")
def iu_root(make_iu_root):
    return make_iu_root({"test": N_TEST})


@pytest.fixture(scope="module")
def studies(iu_root):
    from rrg_bench.datasets.iu_xray.r2gen import IUXrayR2Gen

    return IUXrayR2Gen(iu_root).studies("test")[:N_TEST]


def ctx(tmp_path, **kw) -> GeneratorContext:
    return GeneratorContext(dataset="iu_xray/r2gen", split="test", cache_dir=tmp_path / "cache", progress=False, **kw)


def generate(gen, batch):
    return gen.generate(batch, [study_seed(0, s.study_id) for s in batch])


def test_registered_as_an_image_generator_with_a_trainer():
    from rrg_bench.baselines import TRAINERS

    assert registry("generators").get("anat_attn") is AnatAttnGenerator
    assert AnatAttnGenerator.needs_images
    assert TRAINERS["anat_attn"].target == "rrg_bench.baselines.anat_attn.train:train"


def test_generates_deterministically_and_independently_of_batch_composition(checkpoint, studies, tmp_path):
    gen = AnatAttnGenerator(checkpoint=str(checkpoint))
    before = gen.fingerprint()
    gen.setup(ctx(tmp_path))
    together = generate(gen, studies)
    assert [g.study_id for g in together] == [s.study_id for s in studies]
    assert all(g.text for g in together) and all(0 < g.meta["n_tokens"] <= 48 for g in together)
    again = generate(gen, studies[::-1])[::-1]
    alone = [generate(gen, [s])[0] for s in studies]
    assert [g.text for g in again] == [g.text for g in together] == [g.text for g in alone]
    assert gen.fingerprint() == before  # the same before and after setup
    assert len(list((tmp_path / "cache" / "anat_attn" / "masks").rglob("*.npy"))) == N_TEST  # masks cached per image


def test_fingerprint_names_checkpoint_content_decoding_and_masks(checkpoint, tmp_path):
    fp = AnatAttnGenerator(checkpoint=str(checkpoint), num_beams=2).fingerprint()
    assert len(fp["checkpoint_sha256"]) == 64
    assert fp["decoding"] == {
        "strategy": "beam", "max_new_tokens": 48, "num_beams": 2, "repetition_penalty": 1.2,
        "length_penalty": 1.0, "no_repeat_ngram_size": 0, "dtype": "float32",
    }
    assert fp["mechanism"]["attention_mode"] == "soft" and fp["masks"] == {"kind": "segmenter", "segmenters": "bundled"}
    assert AnatAttnGenerator(checkpoint=str(checkpoint)).fingerprint()["decoding"]["max_new_tokens"] == 48
    changed = tmp_path / "changed"
    shutil.copytree(checkpoint, changed)
    seg = changed / "segmenters" / "lung" / "model.safetensors"
    seg.write_bytes(seg.read_bytes()[:-1] + bytes([seg.read_bytes()[-1] ^ 1]))
    assert AnatAttnGenerator(checkpoint=str(changed)).fingerprint()["checkpoint_sha256"] != fp["checkpoint_sha256"]


def test_masks_from_files_and_none_for_a_maskless_checkpoint(iu_train_reports, studies, iu_root, tmp_path):
    masks = tmp_path / "masks"
    for s in studies:
        target = masks / s.frontal_image.relative_to(iu_root / "images").with_suffix(".npy")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, np.pad(np.ones((60, 60), np.float32), 34))
    soft = build_tiny_checkpoint(tmp_path / "soft", iu_train_reports[:200], text_positions=24, with_segmenters=False)
    gen = AnatAttnGenerator(checkpoint=str(soft), masks="files", mask_dir=str(masks), max_new_tokens=10)
    gen.setup(ctx(tmp_path))
    assert len(generate(gen, studies)) == N_TEST
    assert gen.fingerprint()["masks"]["kind"] == "files"
    with pytest.raises(UsageError, match="needs masks"):
        AnatAttnGenerator(checkpoint=str(soft)).setup(ctx(tmp_path))
    plain = build_tiny_checkpoint(tmp_path / "none", iu_train_reports[:200], text_positions=24, with_segmenters=False,
                                  attention_mode="none")
    gen = AnatAttnGenerator(checkpoint=str(plain), max_new_tokens=10)
    gen.setup(ctx(tmp_path))
    assert len(generate(gen, studies[:2])) == 2 and gen.fingerprint()["masks"] is None


def test_bad_parameters_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="invalid parameters"):
        AnatAttnGenerator(checkpoint="x", beams=3)
    with pytest.raises(UsageError, match="revision"):
        AnatAttnGenerator(checkpoint="manu02/LAnA-Arxiv").fingerprint()
    with pytest.raises(UsageError, match="no such directory"):
        AnatAttnGenerator(checkpoint=str(tmp_path / "nope")).fingerprint()


def test_bench_run_writes_a_full_record(checkpoint, iu_root, tmp_path):
    from rrg_bench.cli import app

    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, [
        "run", "--model", "anat_attn", "--model-arg", f"checkpoint={checkpoint}", "--dataset", "iu_xray/r2gen",
        "--split", "test", "--data-root", str(iu_root), "--limit", str(N_TEST), "--runs-dir", str(runs),
        "--metrics", "nlg", "--n-boot", "0", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    record = json.loads(next(runs.rglob("results.json")).read_text())
    assert record["predictions"]["n"] == N_TEST
    assert "bleu4[tok=ptb]" in record["metrics"]
    blob = json.dumps(record)
    assert AnatAttnGenerator(checkpoint=str(checkpoint)).fingerprint()["checkpoint_sha256"] in blob
    lines = next(runs.rglob("predictions.jsonl")).read_text().splitlines()
    assert len(lines) == N_TEST
