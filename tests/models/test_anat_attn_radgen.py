"""The authors' later ``lana_radgen`` releases (manu02/LAnA, -MIMIC, -v2 … -v5): the released-size key set loads
strictly (expected keys from tests/fixtures/lana/radgen_layout.py, which cites the authors' lines), a tiny checkpoint
in that layout imports strictly and generates as the authors' runtime does, and ``bias_rows=sequence`` equals a
direct re-statement of the authors' ``build_layerwise_attention_bias``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers.strict_keys import strict_key_checks
from rrg_bench.baselines.anat_attn.attention import AnatomicalSpec, anatomical_bias
from rrg_bench.baselines.anat_attn.importer import convert, import_lana_arxiv, load_legacy_state_dict
from rrg_bench.baselines.anat_attn.loading import load_model
from rrg_bench.baselines.anat_attn.smoothing import layer_stack, masks_to_prior
from rrg_bench.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "lana"))
import radgen_layout as RL  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo_reports() -> list[str]:
    from rrg_bench.datasets.demo.dataset import DemoDataset

    return [s.reference for s in DemoDataset().studies("train")]


# ---------------------------------------------------------------- the authors' formula, restated


def authors_layerwise_bias(masks: torch.Tensor, num_layers: int, target_tokens: int, strength: float = 2.0
                           ) -> torch.Tensor:
    """(B, L, T, T) as LWA@a017e7b:src/lana_radgen/layerwise_anatomical_attention.py:13-62 computes it, written
    per layer: resize to 32 x 32 (bilinear, align_corners=False) and clamp; Gaussian k = 3 + 2(L - l),
    sigma = (k - 1)/6, horizontal then vertical with reflect padding (padding by k // 2 with the k taps equals their
    padding by K_max // 2 with zero-padded taps); min-max with the span clamped to 1e-8; flatten; linear
    interpolation (align_corners=False) to T; the same row for every query; lower triangle; times strength."""
    x = F.interpolate(masks.float()[:, None], size=(32, 32), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    layers = []
    for layer in range(num_layers):
        k = 3 + 2 * (num_layers - layer)
        sigma = (k - 1) / 6.0
        taps = torch.arange(-(k // 2), k // 2 + 1, dtype=torch.float32)
        g = torch.exp(-(taps * taps) / (2 * sigma * sigma))
        g = g / g.sum()
        y = F.conv2d(F.pad(x, (k // 2, k // 2, 0, 0), mode="reflect"), g.view(1, 1, 1, k))
        y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), g.view(1, 1, k, 1))
        lo, hi = y.amin(dim=(2, 3), keepdim=True), y.amax(dim=(2, 3), keepdim=True)
        layers.append(((y - lo) / (hi - lo).clamp_min(1e-8)).flatten(1))  # (B, 1024)
    flat = torch.stack(layers, 1)  # (B, L, 1024)
    flat = F.interpolate(flat, size=target_tokens, mode="linear", align_corners=False)
    full = flat[:, :, None, :].expand(-1, -1, target_tokens, -1)
    return torch.tril(full) * strength


def ours(masks: torch.Tensor, num_layers: int, q_len: int, k_len: int, length: int | None = None,
         strength: float = 2.0) -> torch.Tensor:
    """(B, L, q_len, k_len) from our pipeline: prior -> layer maps -> the attention function's offsets."""
    maps = layer_stack(masks_to_prior(masks, 32, "clamp"), num_layers)
    spec = AnatomicalSpec(mode="soft", strength=strength, rows="sequence", grid=8)
    return torch.cat([anatomical_bias(maps[:, layer], spec, q_len, k_len, torch.float32, length)
                      for layer in range(num_layers)], dim=1)


def test_sequence_bias_equals_the_authors_layerwise_bias():
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(2, 64, 64, generator=g) > 0.6).float()
    masks[1] = 0
    masks[1, 10:40, 5:30] = 1  # one blob: a map with a clear structure
    expected = authors_layerwise_bias(masks, num_layers=3, target_tokens=50)
    got = ours(masks, 3, 50, 50)
    assert got.shape == expected.shape == (2, 3, 50, 50)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)
    assert torch.count_nonzero(torch.triu(got, diagonal=1)) == 0 and got.amax() > 1.9  # strength 2, tril
    # generation: built for prompt + max_new_tokens, the prefill sees the top-left block, a KV-cached step one row
    prompt, new = 30, 20
    torch.testing.assert_close(ours(masks, 3, prompt, prompt, length=prompt + new), expected[:, :, :prompt, :prompt],
                               atol=2e-6, rtol=0)
    step = ours(masks, 3, 1, prompt + 4, length=prompt + new)
    torch.testing.assert_close(step, expected[:, :, prompt + 3 : prompt + 4, : prompt + 4], atol=2e-6, rtol=0)
    # the 32 x 32 map is the authors' whatever the resolution of the mask; an all-ones mask stays ones (clamp) ...
    assert torch.equal(masks_to_prior(torch.ones(1, 5, 5), 32, "clamp"), torch.ones(1, 32, 32))
    # ... and its bias is exactly zero (min-max of a constant): the authors' training masks were all ones
    ones = torch.ones(1, 64, 64)
    assert torch.count_nonzero(authors_layerwise_bias(ones, 3, 20)) == torch.count_nonzero(ours(ones, 3, 20, 20)) == 0


# ---------------------------------------------------------------- the released layout


@pytest.mark.parametrize("projection, n_keys", [("mlp4", 1072), ("linear", 1066)])
def test_released_size_layout_loads_strictly(projection, n_keys):
    """At the released sizes (meta device: shapes only): every key of LanaForConditionalGeneration finds its place
    and every weight of ours is filled; the geometry is the authors' (4 registers kept, BOS, 32 x 32 map)."""
    expected = RL.expected_keys(RL.REAL, projection)
    assert len(expected) == n_keys
    with torch.device("meta"):
        converted = convert({k: torch.empty(shape) for k, shape in expected.items()})
    report = converted.report
    assert (report.layout, report.source_keys, report.missing, report.unexpected) == ("lana_radgen", n_keys, [], [])
    c, model = converted.model.config, converted.model
    assert (c.image_size, c.grid_size, c.tokens_to_skip, c.num_prefix_tokens, c.prior_grid) == (512, 32, 1, 1028, 32)
    assert (c.text_config.n_positions, c.max_text_tokens, c.adapter_type) == (2048, 2048 - 1028 - 1, projection)
    assert (c.attention_mode, c.bias_rows, c.attention_strength, c.mask_source) == ("soft", "sequence", 2.0,
                                                                                     "lung_heart")
    # the released runtime: SDPA, so HF builds no float mask to add the bias to (radgen_import docstring)
    assert (c.train_bias, c.decode_bias, c.start_with_bos, c.suppress_eos) == (False, "none", True, True)
    assert model.lm_head.weight is not model.decoder.wte.weight
    assert list(converted.segmenters) == ["lung", "heart"]


def test_release_settings_choose_the_mechanism():
    from rrg_bench.baselines.anat_attn.radgen_import import mechanism, release_settings

    eager = mechanism(release_settings({"segmentation_attention_implementation": "eager"}))
    # eager adds the bias at the prefill; training saw all-ones masks, whose bias is zero, on either backend
    assert (eager["train_bias"], eager["decode_bias"]) == (False, "prefill_only")
    plain = mechanism(release_settings({"use_segmentation_mask": False, "generation_stop_on_eos": True}))
    assert (plain["attention_mode"], plain["suppress_eos"]) == ("none", False)
    with pytest.raises(DataError, match="gaussian_legacy"):
        mechanism(release_settings({"attention_bias_mode": "gaussian_legacy"}))


def test_incomplete_or_extra_keys_fail_listing_them():
    with strict_key_checks(convert, RL.expected_keys(RL.REAL, "mlp4"), extra="segmenter.lung_model.extra.weight",
                           drop="vision_encoder.norm.bias", missing="vision_encoder.norm.bias") as state:
        del state["text_decoder.lm_head.weight"]
        with pytest.raises(DataError, match="lana_radgen.*text_decoder.lm_head.weight"):
            convert(state)


@pytest.fixture(scope="module")
def imported(demo_reports, tmp_path_factory):
    root = tmp_path_factory.mktemp("radgen")
    source = RL.write_radgen_checkpoint(root / "src", demo_reports)
    return source, import_lana_arxiv(source / "model.safetensors", root / "ours")


def test_tiny_release_imports_strictly_with_its_mechanism(imported):
    source, out = imported
    state = load_legacy_state_dict(source / "model.safetensors")
    report = json.loads((out / "import.json").read_text())
    print("import.json:", {k: report[k] for k in ("layout", "source_keys", "missing", "unexpected")})
    assert (report["layout"], report["missing"], report["unexpected"]) == ("lana_radgen", [], [])
    vocab = len(json.loads((source / "vocab.json").read_text()))
    assert report["source_keys"] == len(state) == len(RL.expected_keys(RL.TINY, "mlp4", vocab + 1))
    assert report["release_settings"]["segmentation_attention_implementation"] == "sdpa"
    model, tokenizer = load_model(out)
    c = model.config
    assert (c.image_size, c.num_prefix_tokens, c.bias_rows, c.decode_bias, c.train_bias) == (128, 68, "sequence",
                                                                                             "none", False)
    # the authors add <|pad|> when the embedding has a row for it (modeling_lana.py:133-139)
    assert (tokenizer.pad_token, tokenizer.pad_token_id, c.pad_token_id) == ("<|pad|>", vocab, vocab)
    assert torch.equal(model.lm_head.weight, state["text_decoder.lm_head.weight"])
    assert not torch.equal(model.lm_head.weight, model.decoder.wte.weight)
    for i in (0, 2, 4, 6):
        assert torch.equal(model.adapter[i].weight, state[f"visual_projection.{i}.weight"])
    assert (out / "segmenters" / "lung").is_dir() and (out / "segmenters" / "heart").is_dir()


def _greedy_reference(model, pixels, masks, steps: int) -> torch.Tensor:
    """Full recomputation, no cache: [prefix (68) ; BOS ; tokens so far], EOS forbidden, argmax."""
    with torch.no_grad():
        prefix = model.image_prefix(pixels)
        bos = torch.full((pixels.shape[0], 1), model.config.bos_token_id)
        ids = bos
        for _ in range(steps):
            embeds = torch.cat([prefix, model.decoder.wte(ids)], 1)
            logits = model(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                           anatomical_maps=model.layer_maps(masks), anatomical_phase="generate",
                           anatomical_length=prefix.shape[1] + 1 + steps).logits[:, -1]
            logits[:, model.config.eos_token_id] = float("-inf")
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    return ids[:, 1:]


@pytest.mark.parametrize("decode_bias", ["none", "prefill_only", "every_step"])
def test_tiny_release_generates_as_the_authors_runtime(imported, decode_bias):
    """BOS after the 68-token prefix (registers kept), EOS suppressed (every report max_new_tokens long), greedy;
    with the release's SDPA (``decode_bias=none``) the masks change nothing, with the eager variant
    (``prefill_only``) they change the prefill; ours (``every_step``) decodes with the cache as without it."""
    _, out = imported
    model, _ = load_model(out, decode_bias=decode_bias)
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(2, 3, 128, 128, generator=g)
    masks_a = (torch.rand(2, 32, 32, generator=g) > 0.5).float()
    masks_b = torch.zeros(2, 32, 32)
    masks_b[:, 4:20, 8:28] = 1
    ids = model.generate_reports(pixel_values=pixels, grid_masks=masks_a, max_new_tokens=6, repetition_penalty=1.0)
    assert ids.shape == (2, 6)  # never stopped: EOS is suppressed
    with torch.no_grad():  # the prompt's last logits, which pick the first token
        prefix = model.image_prefix(pixels)
        embeds = torch.cat([prefix, model.decoder.wte(torch.full((2, 1), model.config.bos_token_id))], 1)
        first = [model(inputs_embeds=embeds, anatomical_maps=model.layer_maps(m), anatomical_phase="generate",
                       anatomical_length=embeds.shape[1] + 6).logits[:, -1] for m in (masks_a, masks_b)]
    if decode_bias == "none":
        assert torch.equal(ids, _greedy_reference(model, pixels, masks_a, 6))
        assert torch.equal(first[0], first[1])
        assert torch.equal(ids, model.generate_reports(pixel_values=pixels, grid_masks=masks_b, max_new_tokens=6,
                                                       repetition_penalty=1.0))
    else:  # the bias at the prefill: the first token's logits depend on the masks
        assert (first[0] - first[1]).abs().max() > 1e-6
    if decode_bias == "every_step":  # every recomputed row biased for the same length = every cached step
        assert torch.equal(ids, _greedy_reference(model, pixels, masks_a, 6))


def test_sequence_bias_is_added_to_every_layers_logits(imported):
    """Teacher forcing with the bias on (``train_bias=true``: the authors' eager forward given a real mask): our
    model's logits equal GPT-2 blocks run one by one with the causal float mask plus the restated bias of that
    layer."""
    from transformers import GPT2Model

    _, out = imported
    model, _ = load_model(out, train_bias=True, attention_backend="eager")
    g = torch.Generator().manual_seed(2)
    pixels = torch.randn(1, 3, 128, 128, generator=g)
    raw = (torch.rand(1, 64, 64, generator=g) > 0.5).float()
    ids = torch.randint(0, 50, (1, 7), generator=g)
    with torch.no_grad():
        for name, weight in model.decoder.named_parameters():  # random 0.05-scale weights barely attend: sharpen
            if name.endswith(("c_attn.weight", "c_proj.weight")):
                weight.mul_(30)
        got = model(pixel_values=pixels, input_ids=ids, grid_masks=masks_to_prior(raw, 32, "clamp")).logits
        embeds = torch.cat([model.image_prefix(pixels), model.decoder.wte(ids)], 1)
        t = embeds.shape[1]
        layers = model.config.num_decoder_layers
        bias = authors_layerwise_bias(raw, layers, t)
        causal = torch.full((t, t), torch.finfo(torch.float32).min).triu(1)
        text_config = model.config.text_config.__class__.from_dict(model.config.text_config.to_dict())
        text_config._attn_implementation = "eager"
        plain = GPT2Model(text_config).eval()
        plain.load_state_dict(model.decoder.state_dict())

        def blocks(offsets: torch.Tensor) -> torch.Tensor:
            h = embeds + plain.wpe(torch.arange(t))[None]
            for layer, block in enumerate(plain.h):
                out_h = block(h, attention_mask=(causal + offsets[:, layer])[:, None])
                h = out_h[0] if isinstance(out_h, tuple) else out_h
            return model.lm_head(plain.ln_f(h))

        expected, unbiased = blocks(bias), blocks(torch.zeros_like(bias))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert (got - unbiased).abs().max() > 1e-3  # 100x the tolerance: the bias does move the logits


def test_generator_runs_an_imported_release(imported, tmp_path):
    """``bench run`` path: the generator finds the bundled segmenters and computes the authors' 32 x 32 map."""
    from rrg_bench.api.generator import GeneratorContext, study_seed
    from rrg_bench.baselines.anat_attn.generate import AnatAttnGenerator
    from rrg_bench.datasets.demo.dataset import DemoDataset

    _, out = imported
    studies = DemoDataset().studies("test")[:2]
    gen = AnatAttnGenerator(checkpoint=str(out), max_new_tokens=5, repetition_penalty=1.0)
    fingerprint = gen.fingerprint()
    assert fingerprint["mechanism"]["bias_rows"] == "sequence" and fingerprint["mechanism"]["start_with_bos"]
    gen.setup(GeneratorContext(dataset="demo", split="test", cache_dir=tmp_path / "cache", progress=False))
    assert (gen._provider.grid, gen._provider.prior) == (32, "clamp")
    rows = gen.generate(studies, [study_seed(0, s.study_id) for s in studies])
    assert [r.meta["n_tokens"] for r in rows] == [5, 5]


def test_registered_release_imports_once_into_the_cache(imported, tmp_path, monkeypatch):
    """``weights=lana`` (as ``bench weights fetch lana`` leaves it): imported into the cache once, named by sha256."""
    from rrg_bench.baselines.anat_attn.importer import import_cached
    from rrg_bench.hashing import sha256_file

    source, _ = imported
    monkeypatch.setenv("BENCH_LANA_DIR", str(source))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    first, where = import_cached("lana")
    again, _ = import_cached("lana")
    assert first == again and first.name.startswith("lana-") and (first / "import.json").is_file()
    assert where["repo_id"] == "manu02/LAnA"
    assert where["files_sha256"]["model.safetensors"] == sha256_file(source / "model.safetensors")
    assert json.loads((first / "import.json").read_text())["layout"] == "lana_radgen"
