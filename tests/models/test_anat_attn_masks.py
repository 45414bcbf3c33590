"""anat_attn mask sources (files, CheXmask RLE, segmenters), their cache, and the legacy importer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rrg_bench.baselines.anat_attn.importer import convert, import_lana_arxiv, load_legacy_state_dict
from rrg_bench.baselines.anat_attn.masks import (
    ChexmaskMasks,
    FileMasks,
    GridMaskProvider,
    SegmenterMasks,
    build_mask_source,
    decode_rle,
)
from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration
from rrg_bench.baselines.anat_attn.segmenter import AnatSegmenter
from rrg_bench.baselines.anat_attn.smoothing import masks_to_grid
from rrg_bench.baselines.anat_attn.tiny import (
    build_tiny_model,
    build_tiny_segmenters,
    tiny_segmenter_config,
    train_tokenizer,
)
from rrg_bench.errors import DataError, UsageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def encode_rle(mask: np.ndarray) -> str:
    """Independent CheXmask-style encoder (1-based starts, row-major) to write test tables."""
    flat = np.concatenate([[0], mask.reshape(-1).astype(np.int8), [0]])
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts, ends = changes[0::2], changes[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends))


def test_rle_decoding_is_one_based_and_row_major():
    assert decode_rle("1 3 6 2", 2, 4).astype(int).tolist() == [[1, 1, 1, 0], [0, 1, 1, 0]]
    assert not decode_rle(float("nan"), 3, 3).any() and not decode_rle("", 3, 3).any()
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = rng.random((7, 11)) > 0.6
        assert np.array_equal(decode_rle(encode_rle(mask), 7, 11), mask)


def test_chexmask_table_gives_the_union_of_lungs_and_heart(tmp_path):
    h, w = 20, 30
    left, right, heart = (np.zeros((h, w), bool) for _ in range(3))
    left[2:18, 3:12] = True
    right[2:18, 18:27] = True
    heart[10:17, 10:20] = True
    (tmp_path / "t.csv").write_text(
        "dicom_id,Dice RCA (Mean),Left Lung,Right Lung,Heart,Height,Width\n"
        f"abc,0.9,{encode_rle(left)},{encode_rle(right)},{encode_rle(heart)},{h},{w}\n"
    )
    image = tmp_path / "files" / "p10" / "s5" / "abc.jpg"
    masks = ChexmaskMasks(tmp_path / "t.csv").raw_masks([image])
    assert np.array_equal(masks[0].numpy().astype(bool), left | right | heart)
    with pytest.raises(DataError, match="'zzz' not in"):
        ChexmaskMasks(tmp_path / "t.csv").raw_masks([tmp_path / "zzz.jpg"])
    with pytest.raises(DataError, match="missing column"):
        ChexmaskMasks(tmp_path / "t.csv", id_column="image_id").raw_masks([image])
    with pytest.raises(UsageError, match="lung_logits"):
        build_mask_source("chexmask", mask_source="lung_logits", chexmask_csv=str(tmp_path / "t.csv"))


def test_file_masks_find_npy_and_png_next_to_the_image_layout(tmp_path):
    masks = tmp_path / "masks"
    (masks / "s1").mkdir(parents=True)
    np.save(masks / "s1" / "0.npy", np.eye(6, dtype=np.float32))
    Image.fromarray((np.eye(5) * 255).astype(np.uint8)).save(masks / "s1" / "1.png")
    source = FileMasks(masks)
    a, b = source.raw_masks([tmp_path / "images" / "s1" / "0.png", tmp_path / "images" / "s1" / "1.png"])
    assert torch.equal(a, torch.eye(6)) and torch.equal(b, torch.eye(5) * 255)
    with pytest.raises(DataError, match=r"s2/0\.npy"):
        source.raw_masks([tmp_path / "images" / "s2" / "0.png"])
    rooted = FileMasks(masks, image_root=tmp_path / "images")
    assert rooted.mask_path(tmp_path / "images" / "s1" / "0.png") == masks / "s1" / "0.npy"
    with pytest.raises(UsageError, match="mask_dir=<"):
        build_mask_source("files", mask_source="lung_heart")


@pytest.fixture(scope="module")
def segmenters():
    lung, heart = build_tiny_segmenters(seed=5)
    return lung.eval(), heart.eval()


def test_segmenter_head_layout_upsamples_the_stride_32_map_fourfold(segmenters):
    lung, heart = segmenters
    pixels = torch.randn(2, 3, 128, 128)
    assert lung(pixels).shape == (2, 1, 16, 16)  # 128 / 32 = 4, x2 x2 -> 16
    assert heart(pixels).shape == (2, 3, 16, 16)
    assert lung(torch.randn(1, 3, 512, 512)).shape == (1, 1, 64, 64)  # the paper's 64 x 64 at 512 px


def test_segmenter_mask_source_variants(segmenters):
    lung, heart = segmenters
    pixels = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        lung_logits, heart_logits = lung(pixels), heart(pixels)
    union = SegmenterMasks(lung, heart, "lung_heart").raw_masks([None, None], pixels)
    expected = ((torch.sigmoid(lung_logits[:, 0]) > 0.5) | (heart_logits.argmax(1) == 2)).float()
    assert torch.equal(torch.stack(union), expected)
    logits = SegmenterMasks(lung, None, "lung_logits").raw_masks([None, None], pixels)
    torch.testing.assert_close(torch.stack(logits), lung_logits[:, 0])  # raw, not thresholded
    with pytest.raises(UsageError, match="heart segmenter"):
        SegmenterMasks(lung, None, "lung_heart")


class CountingFiles(FileMasks):
    calls = 0

    def raw_masks(self, image_paths, pixel_values=None):
        CountingFiles.calls += len(image_paths)
        return super().raw_masks(image_paths, pixel_values)


def test_grid_provider_caches_per_image_in_memory_and_on_disk(tmp_path):
    masks = tmp_path / "masks"
    for sid in ("a", "b"):
        (masks / sid).mkdir(parents=True)
        np.save(masks / sid / "0.npy", np.random.default_rng(len(sid)).random((40, 40)).astype(np.float32))
    images = [tmp_path / "img" / "a" / "0.png", tmp_path / "img" / "b" / "0.png"]
    provider = GridMaskProvider(CountingFiles(masks), grid=8, cache_dir=tmp_path / "cache")
    first = provider.grid_masks(images)
    assert first.shape == (2, 8, 8) and CountingFiles.calls == 2
    torch.testing.assert_close(first[0], masks_to_grid(torch.from_numpy(np.load(masks / "a" / "0.npy"))[None], 8)[0])
    provider.grid_masks(images[::-1])
    assert CountingFiles.calls == 2 and provider.hits == 2
    fresh = GridMaskProvider(CountingFiles(masks), grid=8, cache_dir=tmp_path / "cache")
    torch.testing.assert_close(fresh.grid_masks(images), first)
    assert CountingFiles.calls == 2  # read back from disk
    GridMaskProvider(CountingFiles(masks), grid=4, cache_dir=tmp_path / "cache").grid_masks(images)
    assert CountingFiles.calls == 4  # another grid is another entry


# ---------------------------------------------------------------- importer


def legacy_layout(model, lung, heart=None) -> dict[str, torch.Tensor]:
    """Our tiny weights renamed to the authors' heart+lung CustomModel layout (tests/fixtures/lana/legacy_layouts.py:
    the heart segmenter names its 1x1 layer ``adapter``)."""
    state = {}
    for k, v in model.vision_encoder.state_dict().items():
        state[f"encoder.model.{k}"] = v.clone()
    for k, v in model.adapter.state_dict().items():
        state[f"linear_projection.proj.{k}"] = v.clone()
    for k, v in model.decoder.state_dict().items():
        state[f"decoder.transformer.{k}"] = v.clone()
    state["decoder.transformer.h.0.attn.bias"] = torch.ones(1, 1, 4, 4, dtype=torch.bool)  # ignored buffer
    state["decoder.lm_head.weight"] = model.lm_head.weight.detach().clone()
    for prefix, adapter, seg in (("segmenter.lung_model.", "channel_adapter.", lung),
                                 ("segmenter.heart_model.", "adapter.", heart)):
        if seg is None:
            continue
        for k, v in seg.state_dict().items():
            k = k.replace("backbone.", "encoder.", 1) if k.startswith("backbone.") else k
            k = k.replace("head.", "decoder.", 1) if k.startswith("head.") else k
            k = k.replace("channel_adapter.", adapter, 1) if k.startswith("channel_adapter.") else k
            state[prefix + k] = v.clone()
    return state


def test_importer_maps_the_legacy_layout_onto_our_model(iu_train_reports, tmp_path, segmenters):
    reports = iu_train_reports[:300]
    tokenizer = train_tokenizer(reports, vocab_size=300)
    (tmp_path / "tok").mkdir()
    tokenizer.backend_tokenizer.model.save(str(tmp_path / "tok"))  # vocab.json + merges.txt, as GPT-2 ships them
    model = build_tiny_model(tokenizer, text_positions=32, seed=9, attention_mode="soft",
                             mask_source="lung_heart", bias_rows="all").eval()
    lung, heart = segmenters
    torch.save({"model_state_dict": legacy_layout(model, lung, heart)}, tmp_path / "arxiv_paper_model.pth")
    assert len(load_legacy_state_dict(tmp_path)) > 0
    out = import_lana_arxiv(tmp_path, tmp_path / "out", tokenizer_dir=tmp_path / "tok", image_size=128,
                            vision_heads=2, decoder_heads=2)
    imported = AnatAttnForReportGeneration.from_pretrained(out).eval()
    c = imported.config
    # the authors' packaged runtime generates in the default (soft) mode, biasing the prefill only
    assert (c.attention_mode, c.mask_source, c.bias_rows, c.decode_bias) == \
        ("soft", "lung_heart", "all", "prefill_only")
    assert c.vision_config.num_register_tokens == 4 and c.tokens_to_skip == 5
    assert c.text_config.n_positions == model.config.text_config.n_positions
    grid = torch.rand(1, 8, 8)
    ids = torch.randint(2, len(tokenizer), (1, 7))
    pixels = torch.randn(1, 3, 128, 128)
    torch.testing.assert_close(
        imported(pixel_values=pixels, input_ids=ids, grid_masks=grid).logits,
        model(pixel_values=pixels, input_ids=ids, grid_masks=grid).logits,
    )
    for role, seg in (("lung", lung), ("heart", heart)):
        loaded = AnatSegmenter.from_pretrained(out / "segmenters" / role).eval()
        with torch.no_grad():
            torch.testing.assert_close(loaded(pixels), seg(pixels))
    assert AnatSegmenter.from_pretrained(out / "segmenters" / "lung").config.decision == "sigmoid"


def test_importer_rejects_other_layouts(tmp_path):
    with pytest.raises(DataError, match="not the LAnA legacy layout"):
        convert({"foo.weight": torch.zeros(2)})
    torch.save([1, 2], tmp_path / "arxiv_paper_model.pth")
    with pytest.raises(DataError, match="not a state dict"):
        load_legacy_state_dict(tmp_path)
    assert tiny_segmenter_config("heart").target_class == 2
