"""anat_attn: the layer-wise anatomical attention mechanism, pinned against the paper's recipe.

Smoothing is checked against an independent scipy implementation; the bias is checked both as a
tensor and end to end through real attention probabilities (eager backend, layer 0, where both
runs see identical inputs), and the whole model against plain GPT-2 when the bias is off.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from rrg_bench.baselines.anat_attn.attention import AnatomicalSpec, add_bias, anatomical_bias, hidden_value
from rrg_bench.baselines.anat_attn.configuration import AnatAttnConfig
from rrg_bench.baselines.anat_attn.model import AnatAttnForReportGeneration, interpolate_positions
from rrg_bench.baselines.anat_attn.smoothing import (
    gaussian_kernel,
    kernel_sigma,
    kernel_size,
    layer_kernels,
    layer_stack,
    masks_to_grid,
)
from rrg_bench.baselines.anat_attn.tiny import build_tiny_model, tiny_vision_config, train_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer(iu_train_reports):
    return train_tokenizer(iu_train_reports, vocab_size=300)


def tiny(tokenizer, **kw) -> AnatAttnForReportGeneration:
    kw.setdefault("text_positions", 32)
    return build_tiny_model(tokenizer, seed=3, **kw).eval()


def blob_masks(batch: int = 2, size: int = 64) -> torch.Tensor:
    """Two different 'lung + heart'-like binary masks (ellipses) at ``size`` px."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for b in range(batch):
        left = ((x - 0.3 - 0.03 * b) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2 < 1
        right = ((x - 0.7) / 0.14) ** 2 + ((y - 0.5 + 0.05 * b) / 0.3) ** 2 < 1
        heart = ((x - 0.55) / 0.12) ** 2 + ((y - 0.65) / 0.12) ** 2 < 1
        out.append((left | right | heart).float())
    return torch.stack(out)


# ---------------------------------------------------------------- smoothing recipe


def test_kernel_sizes_and_sigmas_per_layer_match_the_paper_table():
    ks = [kernel_size(layer, 12) for layer in range(12)]
    assert ks == [27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5]
    sigmas = [round(kernel_sigma(k), 2) for k in ks]
    assert sigmas == [4.33, 4.0, 3.67, 3.33, 3.0, 2.67, 2.33, 2.0, 1.67, 1.33, 1.0, 0.67]
    kernels = layer_kernels(12)
    assert kernels.shape == (12, 27)
    torch.testing.assert_close(kernels.sum(1), torch.ones(12))
    torch.testing.assert_close(kernels, kernels.flip(1))  # centred
    for layer, k in enumerate(ks):  # zero taps outside the layer's own kernel
        pad = (27 - k) // 2
        assert torch.all(kernels[layer, :pad] == 0) and torch.all(kernels[layer, 27 - pad :] == 0)
        assert torch.all(kernels[layer, pad : 27 - pad] > 0)


def test_layer_stack_equals_an_independent_separable_gaussian_with_mirror_padding():
    grid = masks_to_grid(blob_masks(), 32)
    maps = layer_stack(grid, 12)
    for b in range(grid.shape[0]):
        for layer in range(12):
            k = kernel_size(layer, 12)
            g = gaussian_kernel(k, kernel_sigma(k), torch.float64).numpy()
            # torch "reflect" padding is scipy's "mirror" (edge not repeated)
            ref = ndimage.correlate1d(grid[b].double().numpy(), g, axis=1, mode="mirror")
            ref = ndimage.correlate1d(ref, g, axis=0, mode="mirror")
            ref = (ref - ref.min()) / (ref.max() - ref.min() + 1e-8)
            np.testing.assert_allclose(maps[b, layer].numpy(), ref, atol=1e-5)


def test_maps_are_in_unit_range_and_sharper_with_depth():
    grid = masks_to_grid(blob_masks(), 32)
    maps = layer_stack(grid, 12)
    assert maps.shape == (2, 12, 32, 32)
    assert maps.min() >= 0 and maps.max() <= 1
    torch.testing.assert_close(maps.amin(dim=(2, 3)), torch.zeros(2, 12))
    torch.testing.assert_close(maps.amax(dim=(2, 3)), torch.ones(2, 12), atol=1e-6, rtol=0)
    distance = (maps - grid[:, None]).abs().mean(dim=(2, 3))  # from the unblurred prior
    assert torch.all(distance[:, 1:] < distance[:, :-1])
    edge = (maps[..., :, 1:] - maps[..., :, :-1]).abs().amax(dim=(2, 3))  # steepest step grows
    assert torch.all(edge[:, -1] > edge[:, 0])


def test_masks_to_grid_normalises_per_sample_and_resizes_bilinearly():
    masks = blob_masks(2, 64) * torch.tensor([3.0, 250.0]).view(2, 1, 1) - 1.0
    grid = masks_to_grid(masks, 8)
    assert grid.shape == (2, 8, 8) and grid.min() >= 0 and grid.max() <= 1
    ref = torch.nn.functional.interpolate(blob_masks(2, 64)[:, None], size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(grid, ref[:, 0], atol=1e-6, rtol=0)
    assert torch.all(masks_to_grid(torch.full((1, 16, 16), 5.0), 8) == 0)  # constant mask: no prior


def test_grid_too_small_for_the_blur_is_rejected_at_config_time():
    from transformers import GPT2Config

    with pytest.raises(ValueError, match="too small"):
        AnatAttnConfig(vision_config=tiny_vision_config(64), text_config=GPT2Config(n_layer=3, n_positions=64),
                       image_size=64)
    AnatAttnConfig(  # the same grid is fine without the mechanism
        vision_config=tiny_vision_config(64), text_config=GPT2Config(n_layer=3, n_positions=64), image_size=64,
        attention_mode="none",
    )


# ---------------------------------------------------------------- bias tensor


def spec(**kw) -> AnatomicalSpec:
    base = dict(mode="soft", strength=1.0, rows="all", grid=4)
    return AnatomicalSpec(**{**base, **kw})


@pytest.fixture
def layer_map():
    torch.manual_seed(0)
    m = torch.rand(2, 4, 4)
    m[:, 0, 0] = 0.0  # a hidden cell
    m[:, 2, 1] = 0.0
    return m


def test_bias_only_on_image_key_columns_and_on_every_query_row(layer_map):
    n, k_len = 16, 24
    bias = anatomical_bias(layer_map, spec(), q_len=k_len, k_len=k_len, dtype=torch.float32)
    assert bias.shape[-1] == k_len
    assert torch.all(bias[..., n:] == 0)  # text keys untouched
    flat = layer_map.reshape(2, 1, 1, n)
    torch.testing.assert_close(bias[..., :n].expand(2, 1, k_len, n), flat.expand(2, 1, k_len, n))
    # one-token decoding step at a text position: same offsets on the image keys
    step = anatomical_bias(layer_map, spec(), q_len=1, k_len=k_len, dtype=torch.float32)
    torch.testing.assert_close(step[:, :, 0, :n], flat[:, :, 0])


def test_strength_scales_the_soft_bias_and_nothing_else(layer_map):
    one = anatomical_bias(layer_map, spec(), 20, 20, torch.float32)
    two = anatomical_bias(layer_map, spec(strength=2.5), 20, 20, torch.float32)
    torch.testing.assert_close(two, 2.5 * one)


def test_hidden_masks_exactly_the_zero_cells(layer_map):
    soft = anatomical_bias(layer_map, spec(), 20, 20, torch.float32)
    hidden = anatomical_bias(layer_map, spec(mode="hidden"), 20, 20, torch.float32)
    assert hidden.shape == (2, 1, 1, 20)  # "all" rows: one row of offsets broadcast over queries
    zero = layer_map.reshape(2, 1, 1, 16) == 0
    assert torch.all(hidden[..., :16][zero] == hidden_value(torch.float32))
    torch.testing.assert_close(hidden[..., :16][~zero], soft[..., :16][~zero])
    assert torch.all(hidden[..., 16:] == 0)


def test_bias_rows_image_drops_text_rows_only(layer_map):
    full = anatomical_bias(layer_map, spec(), 20, 20, torch.float32)
    image = anatomical_bias(layer_map, spec(rows="image"), 20, 20, torch.float32)
    torch.testing.assert_close(image[:, :, :16], full[:, :, :16].expand(2, 1, 16, 20))
    assert torch.all(image[:, :, 16:] == 0)
    assert torch.all(anatomical_bias(layer_map, spec(rows="image"), 1, 20, torch.float32) == 0)


def test_legacy_top_left_adds_the_2d_map_to_the_first_grid_block_only(layer_map):
    legacy = anatomical_bias(layer_map, spec(rows="legacy_top_left"), 20, 20, torch.float32)
    torch.testing.assert_close(legacy[:, 0, :4, :4], layer_map)  # row i = query i, column j = key j
    legacy[:, 0, :4, :4] = 0
    assert torch.all(legacy == 0)


def test_adding_hidden_to_the_causal_mask_never_overflows(layer_map):
    causal = torch.triu(torch.full((20, 20), torch.finfo(torch.float32).min), 1).expand(2, 1, 20, 20)
    hidden = anatomical_bias(layer_map, spec(mode="hidden"), 20, 20, torch.float32)
    combined = add_bias(causal, hidden)
    assert torch.isfinite(combined).all()
    # a hidden visible key stays above a causally masked one: rows never fall back on the future
    assert combined[0, 0, 0, 0] > combined[0, 0, 0, 1]


# ---------------------------------------------------------------- through the model


def test_config_derives_the_grid_and_the_tokens_to_skip():
    from transformers import GPT2Config

    c = AnatAttnConfig(vision_config=tiny_vision_config(96), text_config=GPT2Config(n_layer=2, n_positions=80),
                       image_size=96)
    assert (c.grid_size, c.num_image_tokens, c.tokens_to_skip, c.max_text_tokens) == (6, 36, 5, 44)
    paper = AnatAttnConfig()
    assert (paper.grid_size, paper.num_image_tokens, paper.tokens_to_skip, paper.max_text_tokens) == (32, 1024, 5, 1024)
    assert paper.attention_mode == "soft" and paper.bias_rows == "all" and paper.attention_strength == 1.0
    assert paper.mask_source == "lung_heart"


def test_position_table_interpolation_keeps_endpoints_and_is_linear():
    table = torch.randn(5, 3)
    out = interpolate_positions(table, 9)  # every other row is an original row
    torch.testing.assert_close(out[::2], table)
    torch.testing.assert_close(out[1::2], (table[:-1] + table[1:]) / 2)


def test_mode_none_equals_plain_gpt2_with_the_same_prefix(tokenizer):
    from transformers import GPT2LMHeadModel

    model = tiny(tokenizer, attention_mode="none")
    gpt2 = GPT2LMHeadModel(model.config.text_config.__class__.from_dict(model.config.text_config.to_dict()))
    gpt2.config._attn_implementation = "sdpa"
    gpt2.transformer.load_state_dict(model.decoder.state_dict())
    gpt2.tie_weights()
    gpt2.eval()
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, 128, 128)
    ids = torch.randint(2, len(tokenizer), (2, 12))
    ours = model(pixel_values=pixels, input_ids=ids).logits
    prefix = model.image_prefix(pixel_values=pixels)
    plain = gpt2(inputs_embeds=torch.cat([prefix, gpt2.transformer.wte(ids)], 1)).logits
    assert (ours - plain).abs().max().item() <= 1e-5
    assert not model.needs_masks


def test_zero_maps_in_soft_mode_change_nothing_and_real_maps_do(tokenizer):
    soft = tiny(tokenizer)
    none = tiny(tokenizer, attention_mode="none")
    none.load_state_dict(soft.state_dict())
    torch.manual_seed(2)
    feats = torch.randn(2, 64, 32)
    ids = torch.randint(2, len(tokenizer), (2, 10))
    plain = none(image_features=feats, input_ids=ids).logits
    zero = soft(image_features=feats, input_ids=ids, anatomical_maps=torch.zeros(2, 3, 8, 8)).logits
    real = soft(image_features=feats, input_ids=ids, grid_masks=masks_to_grid(blob_masks(), 8)).logits
    assert (zero - plain).abs().max().item() <= 1e-5
    assert (real - plain).abs().max().item() > 1e-3
    with pytest.raises(ValueError, match="grid_masks or anatomical_maps"):
        soft(image_features=feats, input_ids=ids)


def layer0_log_attention(model, feats, ids, grid):
    model.config.text_config._attn_implementation = "anat_attn_eager"
    out = model(image_features=feats, input_ids=ids, grid_masks=grid, output_attentions=True)
    return torch.log(out.attentions[0].clamp_min(1e-30))


@pytest.mark.parametrize("rows", ["all", "image", "legacy_top_left"])
def test_real_attention_carries_the_bias_where_and_only_where_it_should(tokenizer, rows):
    """log softmax(s + b) − log softmax(s) = b − c_row: the difference, re-centred on a text key
    (which never has bias), must equal the bias tensor on every visible key of layer 0."""
    biased = tiny(tokenizer, bias_rows=rows, attention_backend="eager")
    plain = tiny(tokenizer, attention_mode="none", attention_backend="eager")
    plain.load_state_dict(biased.state_dict())
    torch.manual_seed(4)
    feats, ids = torch.randn(1, 64, 32), torch.randint(2, len(tokenizer), (1, 6))
    grid = masks_to_grid(blob_masks(1), 8)
    diff = layer0_log_attention(biased, feats, ids, grid) - layer0_log_attention(plain, feats, ids, None)
    expected = anatomical_bias(biased.layer_maps(grid)[:, 0], biased.anatomical_spec, 70, 70, torch.float32)
    expected = expected.expand(1, 1, 70, 70)  # "all" rows come as one broadcast row
    text_rows = diff[0, :, 64:, :]  # (heads, 6, 70): keys of text row r are 0..64+r
    recentred = text_rows - text_rows[:, :, 64:65]  # key 64 is text: zero bias, gives c_row
    for r in range(6):
        visible = 64 + r + 1
        torch.testing.assert_close(
            recentred[:, r, :visible], expected[0, 0, 64 + r, :visible].expand(2, visible), atol=2e-4, rtol=0
        )
    if rows != "all":  # no bias on text rows at all
        assert recentred[:, :, :64].abs().max() < 2e-4
    image_rows = diff[0, :, :8, :8]  # the top-left block: image queries 0..7
    for i in range(1, 8):
        centred = image_rows[:, i, : i + 1] - image_rows[:, i, :1] + expected[0, 0, i, 0]
        torch.testing.assert_close(centred, expected[0, 0, i, : i + 1].expand(2, i + 1), atol=2e-4, rtol=0)


def test_hidden_mode_gives_zero_attention_to_zero_cells_and_no_nan(tokenizer):
    model = tiny(tokenizer, attention_mode="hidden", attention_backend="eager")
    model.config.text_config._attn_implementation = "anat_attn_eager"
    torch.manual_seed(5)
    feats, ids = torch.randn(1, 64, 32), torch.randint(2, len(tokenizer), (1, 6))
    grid = masks_to_grid(blob_masks(1), 8)
    out = model(image_features=feats, input_ids=ids, grid_masks=grid, output_attentions=True)
    assert torch.isfinite(out.logits).all()
    maps = model.layer_maps(grid)
    for layer, attn in enumerate(out.attentions):
        zero = (maps[0, layer].reshape(64) == 0)
        assert zero.any()
        assert attn[0, :, 64:, :64][:, :, zero].max() < 1e-12  # text rows never look at hidden patches
        assert attn[0, :, 0, 1:].max() < 1e-12  # row 0 never attends the future, even if key 0 is hidden


@pytest.mark.parametrize("variant", [dict(), dict(attention_mode="hidden"), dict(bias_rows="legacy_top_left")])
def test_kv_cache_decoding_equals_full_recomputation(tokenizer, variant):
    model = tiny(tokenizer, **variant)
    torch.manual_seed(6)
    feats = torch.randn(2, 64, 32)
    grid = masks_to_grid(blob_masks(), 8)
    cached = model.generate_reports(image_features=feats, grid_masks=grid, max_new_tokens=8, repetition_penalty=1.0)
    uncached = model.generate_reports(
        image_features=feats, grid_masks=grid, max_new_tokens=8, repetition_penalty=1.0, use_cache=False
    )
    assert torch.equal(cached, uncached)
    # the last step's logits with the cache equal a full teacher-forced pass over the same tokens
    full = model(image_features=feats, input_ids=cached[:, :-1], grid_masks=grid).logits[:, -1]
    greedy = full.argmax(-1)
    assert torch.equal(greedy, cached[:, -1])


def test_batched_greedy_is_independent_of_batch_composition(tokenizer):
    model = tiny(tokenizer)
    torch.manual_seed(7)
    feats = torch.randn(3, 64, 32)
    grid = masks_to_grid(torch.cat([blob_masks(2), blob_masks(1)]), 8)
    together = model.generate_reports(image_features=feats, grid_masks=grid, max_new_tokens=10)
    alone = [model.generate_reports(image_features=feats[i : i + 1], grid_masks=grid[i : i + 1], max_new_tokens=10)
             for i in range(3)]
    for i in range(3):
        assert torch.equal(together[i], alone[i][0])
    beams = model.generate_reports(image_features=feats, grid_masks=grid, max_new_tokens=6, num_beams=3)
    assert beams.shape[0] == 3


def test_save_and_load_round_trips_every_switch(tokenizer, tmp_path):
    model = tiny(tokenizer, attention_mode="hidden", attention_strength=2.0, bias_rows="image",
                 mask_source="lung_logits")
    model.save_pretrained(tmp_path)
    loaded = AnatAttnForReportGeneration.from_pretrained(tmp_path).eval()
    c = loaded.config
    assert (c.attention_mode, c.attention_strength, c.bias_rows, c.mask_source) == \
        ("hidden", 2.0, "image", "lung_logits")
    assert loaded.decoder.config._attn_implementation == "anat_attn_sdpa"
    assert loaded.lm_head.weight.data_ptr() == loaded.decoder.wte.weight.data_ptr()
    feats, grid = torch.randn(1, 64, 32), masks_to_grid(blob_masks(1), 8)
    ids = torch.randint(2, len(tokenizer), (1, 5))
    torch.testing.assert_close(
        loaded(image_features=feats, input_ids=ids, grid_masks=grid).logits,
        model(image_features=feats, input_ids=ids, grid_masks=grid).logits,
    )
    assert not any(p.requires_grad for p in loaded.vision_encoder.parameters())
    loaded.train()
    assert not loaded.vision_encoder.training and loaded.decoder.training


def test_from_components_wires_local_pretrained_parts(tokenizer, tmp_path):
    from transformers import DINOv3ViTModel, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(8)
    vision = DINOv3ViTModel(tiny_vision_config(128))
    lm = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=len(tokenizer), n_positions=16))
    vision.save_pretrained(tmp_path / "vision")
    lm.save_pretrained(tmp_path / "gpt2")
    model = AnatAttnForReportGeneration.from_components(str(tmp_path / "vision"), str(tmp_path / "gpt2"),
                                                        image_size=128)
    assert model.config.text_config.n_positions == 64 + 16 and model.config.max_text_tokens == 16
    torch.testing.assert_close(model.decoder.wpe.weight, interpolate_positions(lm.transformer.wpe.weight, 80))
    torch.testing.assert_close(model.decoder.h[1].mlp.c_fc.weight, lm.transformer.h[1].mlp.c_fc.weight)
    torch.testing.assert_close(model.vision_encoder.layer[0].mlp.up_proj.weight, vision.layer[0].mlp.up_proj.weight)
    assert model.lm_head.weight.data_ptr() == model.decoder.wte.weight.data_ptr()
