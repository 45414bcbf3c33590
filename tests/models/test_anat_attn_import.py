"""The authors' released LAnA checkpoints: both legacy layouts load strictly (expected keys and shapes from
tests/fixtures/lana/legacy_layouts.py, which cites the authors' lines), import with the mechanism they generate
with, and ``bench run --model anat_attn --split test`` uses the released checkpoint with no other flag."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from helpers.strict_keys import strict_key_checks
from rrg_bench.baselines.anat_attn.importer import convert, import_lana_arxiv, load_legacy_state_dict
from rrg_bench.baselines.anat_attn.loading import load_model
from rrg_bench.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "lana"))
from authors_checkpoint import layouts, write_authors_checkpoint  # noqa: E402

LL = layouts()
LAYOUTS = ("lung_only", "heart_lung")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo_reports() -> list[str]:
    from rrg_bench.datasets.demo.dataset import DemoDataset

    return [s.reference for s in DemoDataset().studies("train")]


@pytest.mark.parametrize("layout, n_keys", [("lung_only", 714), ("heart_lung", 1066)])
def test_released_size_layout_loads_strictly_with_the_authors_geometry(layout, n_keys):
    """At the released sizes (on the meta device: shapes only, no memory): every key of the authors'
    CustomModel finds its place and every weight of ours is filled."""
    expected = LL.expected_keys(layout, LL.REAL)
    assert len(expected) == n_keys
    with torch.device("meta"):
        converted = convert({k: torch.empty(shape) for k, shape in expected.items()})
    report = converted.report
    assert (report.layout, report.source_keys, report.missing, report.unexpected) == (layout, n_keys, [], [])
    c = converted.model.config
    assert (c.image_size, c.grid_size, c.tokens_to_skip, c.text_config.n_positions, c.max_text_tokens) == (
        512, 32, 5, 2048, 1024)
    assert (c.vision_config.num_attention_heads, c.text_config.n_head, c.num_decoder_layers) == (6, 12, 12)
    roles = {"lung_only": ["lung"], "heart_lung": ["lung", "heart"]}[layout]
    assert list(converted.segmenters) == roles
    assert converted.segmenters["lung"].config.backbone_config.depths == [3, 3, 27, 3]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tiny_authors_checkpoint_imports_with_its_mechanism_and_generates(layout, demo_reports, tmp_path):
    source = write_authors_checkpoint(tmp_path / "src", layout, demo_reports)
    state = load_legacy_state_dict(source)
    out = import_lana_arxiv(source, tmp_path / "ours")
    report = json.loads((out / "import.json").read_text())
    assert (report["layout"], report["missing"], report["unexpected"]) == (layout, [], [])
    assert report["source_keys"] == len(state) == len(LL.expected_keys(layout, {**LL.TINY, "vocab": 1}))
    model, tokenizer = load_model(out)
    c = model.config
    # the authors' packaged runtime: eager, default (soft) mode, bias at the prefill only
    assert (c.attention_mode, c.decode_bias) == ("soft", "prefill_only")
    assert (c.mask_source, c.bias_rows) == {"lung_only": ("lung_logits", "image"),
                                           "heart_lung": ("lung_heart", "all")}[layout]
    assert (c.image_size, c.tokens_to_skip, tokenizer.pad_token_id) == (128, 5, tokenizer.eos_token_id)
    heart = "segmenter.heart_model.adapter.weight" if layout == "heart_lung" else None
    if heart:  # the heart segmenter's `adapter` is our channel_adapter, weight for weight
        from rrg_bench.baselines.anat_attn.segmenter import AnatSegmenter

        ours = AnatSegmenter.from_pretrained(out / "segmenters" / "heart").channel_adapter.weight
        assert torch.equal(ours, state[heart])
    assert torch.equal(model.adapter.weight, state["linear_projection.proj.weight"])
    ids = model.generate_reports(pixel_values=torch.randn(2, 3, 128, 128), grid_masks=torch.rand(2, 8, 8),
                                 max_new_tokens=6)
    assert ids.shape[0] == 2 and 1 <= ids.shape[1] <= 6


def test_importer_refuses_an_incomplete_later_layout_and_unknown_keys(demo_reports, tmp_path):
    """A lana_radgen state dict without its decoder is refused naming the layout (complete ones import:
    test_anat_attn_radgen.py)."""
    with pytest.raises(DataError, match="lana_radgen"):
        convert({"vision_encoder.embeddings.cls_token": torch.zeros(1, 1, 4)})
    with strict_key_checks(convert, LL.expected_keys("lung_only", LL.REAL), extra="segmenter.extra_head.weight",
                           drop="encoder.model.norm.bias", missing="vision_encoder.norm.bias"):
        pass


# ---------------------------------------------------------------- the headline command


def _env(tmp_path: Path) -> dict[str, str]:
    from helpers.bench_cli import bench_env

    return bench_env(BENCH_WEIGHTS_DIR=str(tmp_path / "weights"), BENCH_CACHE_DIR=str(tmp_path / "cache"),
                     BENCH_RUNS_DIR=str(tmp_path / "runs"), HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
                     OMP_NUM_THREADS="1")


def test_bench_run_without_flags_uses_the_released_checkpoint(demo_reports, tmp_path):
    """`bench run --model anat_attn --split test` (demo data by default) with the authors' checkpoint in the
    weights dir, as `bench weights fetch lana-arxiv` leaves it: imported once, recorded by sha256."""
    from helpers import only_record
    from helpers.bench_cli import run_bench
    from rrg_bench.hashing import sha256_file

    source = write_authors_checkpoint(tmp_path / "weights" / "lana-arxiv", "heart_lung", demo_reports)
    proc = run_bench(["run", "--model", "anat_attn", "--split", "test"], env=_env(tmp_path), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(only_record(tmp_path / "runs").read_text())
    assert record["predictions"]["n"] == 12
    blob = json.dumps(record)
    assert sha256_file(source / "arxiv_paper_model.pth") in blob and "manu02/LAnA-Arxiv" in blob
    assert len(list((tmp_path / "cache" / "anat_attn" / "imported").glob("lana-arxiv-*/import.json"))) == 1


def test_bench_run_offline_with_nothing_cached_names_the_checkpoint_and_the_fetch(tmp_path):
    from helpers.bench_cli import run_bench

    proc = run_bench(["run", "--model", "anat_attn", "--split", "test"], env=_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "lana-arxiv" in lines[0] and "bench weights fetch lana-arxiv" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["model.safetensors", "arxiv_paper_model.pth"])
def test_a_corrupt_weights_file_is_one_line_naming_it(name, tmp_path):
    """A torn download or a corrupt header: the importer's CLI prints one `error:` line, no traceback."""
    import subprocess

    bad = tmp_path / name
    bad.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match=f"{name}: not loadable as a tensor state dict"):
        load_legacy_state_dict(bad)
    proc = subprocess.run([sys.executable, "-m", "rrg_bench.baselines.anat_attn.importer", str(bad),
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("error: ")
