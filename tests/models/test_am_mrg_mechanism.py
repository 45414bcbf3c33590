"""am_mrg pieces against their definitions: Hopfield equation and retrieval, Grad-CAM and patch
selection, the 197 + 3 x 14 prefix at paper size, the loss mask, memory hashing and the train-only rule."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from rrg_bench.api.types import Study
from rrg_bench.baselines.am_mrg.configuration import (
    AMMRGConfig,
    ImageConfig,
    paper_qformer_config,
    vision_token_count,
    vit_large_config,
)
from rrg_bench.baselines.am_mrg.gradcam import grad_cam, select_patches
from rrg_bench.baselines.am_mrg.hopfield import HopfieldLayer
from rrg_bench.baselines.am_mrg.memory import MemoryMismatch, check_train_only, load_memory, sample_reports, save_memory
from rrg_bench.baselines.am_mrg.model import AMMRG, IGNORE_INDEX, build_vision_encoder
from rrg_bench.baselines.am_mrg.presets import resolve_recipe
from rrg_bench.baselines.am_mrg.stage1 import DiseaseClassifier
from rrg_bench.baselines.am_mrg.tiny import (
    build_tiny_llm,
    tiny_qformer_config,
    tiny_stage1_config,
    tiny_vision_config,
    train_tokenizer,
)
from rrg_bench.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- Hopfield layer
def test_hopfield_layer_equals_its_written_equation():
    torch.manual_seed(0)
    layer = HopfieldLayer(12, 10, num_heads=3, hidden_size=8, pattern_size=6, output_size=5, beta=4.0, dropout=0.1)
    for p in layer.parameters():  # non-trivial LayerNorm affine parameters too
        p.data.normal_(0, 0.5)
    layer = layer.double().eval()
    memory = torch.randn(7, 10, dtype=torch.float64)
    layer.set_memory(memory)
    xi = torch.randn(2, 4, 12, dtype=torch.float64)
    got = layer(xi)

    ln_xi = layer.norm_state(xi)
    ln_y, ln_v = layer.norm_stored(memory), layer.norm_projection(memory)
    heads = []
    for h in range(3):
        wq = layer.q_proj.weight[h * 8:(h + 1) * 8]
        bq = layer.q_proj.bias[h * 8:(h + 1) * 8]
        wk = layer.k_proj.weight[h * 8:(h + 1) * 8]
        bk = layer.k_proj.bias[h * 8:(h + 1) * 8]
        wv = layer.v_proj.weight[h * 6:(h + 1) * 6]
        bv = layer.v_proj.bias[h * 6:(h + 1) * 6]
        q, k, v = ln_xi @ wq.T + bq, ln_y @ wk.T + bk, ln_v @ wv.T + bv
        heads.append(torch.softmax(4.0 * q @ k.T, dim=-1) @ v)
    want = torch.cat(heads, dim=-1) @ layer.out_proj.weight.T + layer.out_proj.bias
    assert got.shape == (2, 4, 5)
    assert (got - want).abs().max().item() <= 1e-6


def test_hopfield_retrieves_a_stored_pattern_from_a_noisy_query_at_beta_4():
    torch.manual_seed(1)
    d, n = 64, 20
    layer = HopfieldLayer(d, d, num_heads=1, hidden_size=d, pattern_size=d, beta=4.0, dropout=0.0).eval()
    with torch.no_grad():
        for proj in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
            proj.weight.copy_(torch.eye(d))
            proj.bias.zero_()
    memory = torch.randn(n, d)
    layer.set_memory(memory)
    target = 7
    query = memory[target] + 0.5 * torch.randn(d)  # noise of half the patterns' scale
    out = layer(query.view(1, 1, d))[0, 0]
    stored = F.layer_norm(memory, (d,))
    assert torch.argmax(layer.association(query.view(1, 1, d))[0, 0, 0]).item() == target
    assert F.cosine_similarity(out, stored[target], dim=0).item() > 0.99
    assert F.cosine_similarity(F.layer_norm(query, (d,)), stored[target], dim=0).item() < 0.95  # the query was noisy


def test_stored_patterns_are_frozen_and_not_in_the_state_dict():
    layer = HopfieldLayer(8, 6, num_heads=2, hidden_size=4, pattern_size=4)
    memory = torch.randn(5, 6, requires_grad=True)
    layer.set_memory(memory)
    assert "stored_patterns" not in layer.state_dict()
    layer(torch.randn(1, 3, 8)).sum().backward()
    assert memory.grad is None and layer.q_proj.weight.grad is not None
    with pytest.raises(ValueError, match="memory must be"):
        layer.set_memory(torch.randn(5, 7))


# ---------------------------------------------------------------- Grad-CAM
def _cam_with_patch_means(means: dict[int, float], size: int = 56) -> torch.Tensor:
    grid = torch.zeros(14 * 14)
    for index, value in means.items():
        grid[index] = value
    return grid.view(14, 14).repeat_interleave(size // 14, 0).repeat_interleave(size // 14, 1)


def test_patch_selection_keeps_patches_above_threshold_best_first_at_most_top_k():
    means = {3: 0.9, 50: 0.95, 51: 0.8, 100: 0.76, 120: 0.99, 121: 0.85, 150: 0.78, 7: 0.75, 8: 0.2}
    picked = select_patches(_cam_with_patch_means(means), threshold=0.75, top_k=6)
    assert [i for i, _ in picked] == [120, 50, 3, 121, 51, 150]
    assert [round(v, 4) for _, v in picked] == [0.99, 0.95, 0.9, 0.85, 0.8, 0.78]
    few = select_patches(_cam_with_patch_means({3: 0.9, 7: 0.75, 9: 0.5}), threshold=0.75, top_k=6)
    assert [i for i, _ in few] == [3]  # 0.75 itself is not "above"
    assert select_patches(_cam_with_patch_means({}), 0.75, 6) == []
    with pytest.raises(ValueError, match="divisible"):
        select_patches(torch.zeros(50, 50))


def test_grad_cam_from_hooks_equals_direct_autograd_on_the_final_norm():
    torch.manual_seed(0)
    model = DiseaseClassifier(tiny_stage1_config()).eval()
    pixels = torch.randn(2, 3, 56, 56)
    cam = grad_cam(model, pixels, observation=4)
    assert cam.shape == (2, 56, 56) and cam.min() >= 0 and cam.max() <= 1  # min-max scaled, then resized

    tokens = model.encoder(pixel_values=pixels).last_hidden_state  # output of the final LayerNorm
    queries = model.disease_tokens.expand(2, -1, -1)
    q = model.qformer(query_embeds=queries, encoder_hidden_states=tokens).last_hidden_state
    logits = model.heads[4](model.norm(model.proj(q)).mean(1))
    grad, = torch.autograd.grad(torch.softmax(logits, -1)[:, 1].sum(), tokens)
    act = tokens.detach().transpose(1, 2).reshape(2, -1, 7, 7)
    w = grad.transpose(1, 2).reshape(2, -1, 7, 7).mean(dim=(2, 3), keepdim=True)
    manual = F.relu((w * act).sum(1))
    manual = manual - manual.amin(dim=(1, 2), keepdim=True)
    manual = manual / (1e-7 + manual.amax(dim=(1, 2), keepdim=True))
    manual = F.interpolate(manual[:, None], size=(56, 56), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(cam, manual, atol=1e-5)


# ---------------------------------------------------------------- stage-2 layout
def test_prefix_has_197_plus_3x14_positions_with_the_vit_substitute():
    from transformers import Blip2QFormerModel, Qwen2Config, Qwen2ForCausalLM

    config = AMMRGConfig(vision_config=vit_large_config(), qformer_config=paper_qformer_config(1408))
    assert config.num_vision_tokens() == 197 and config.prefix_length() == 197 + 3 * 14 == 239
    assert config.hopfield.num_heads == 6 and config.hopfield.beta == 4.0
    with torch.device("meta"):  # no weights: the real classes at paper size, shapes only
        llm = Qwen2ForCausalLM(Qwen2Config(hidden_size=1024, intermediate_size=2816, num_hidden_layers=1,
                                           num_attention_heads=16, num_key_value_heads=16, vocab_size=151936))
        model = AMMRG(config, llm)
        model.set_memories(torch.empty(14 + 14 * 500, 768), torch.empty(6000, 768))
        features = model.encode_images(torch.empty(2, 3, 224, 224))
        prefix = model.visual_prefix(features)
    assert isinstance(model.qformer, Blip2QFormerModel) and model.qformer.config.encoder_hidden_size == 1408
    assert features.shape == (2, 197, 1024) and prefix.shape == (2, 239, 1024)
    swin = {"model_type": "swin", "patch_size": 4, "depths": [2, 2, 18, 2]}
    assert vision_token_count(swin, 224) == 49


def _tiny_model(reports):
    torch.manual_seed(0)
    tokenizer = train_tokenizer(reports, vocab_size=300)
    vision = tiny_vision_config()
    config = AMMRGConfig(vision_config=vision, qformer_config=tiny_qformer_config(32), image=ImageConfig(size=56),
                         visual_memory_dim=32, report_memory_dim=32,
                         hopfield={"num_heads": 2, "hidden_size": 16, "pattern_size": 16})
    model = AMMRG(config, build_tiny_llm(tokenizer)).eval()
    model.set_tokenizer(tokenizer)
    model.set_memories(torch.randn(20, 32), torch.randn(30, 32))
    return model, tokenizer


def test_loss_covers_report_tokens_only_not_bos_prompt_or_visual_positions():
    reports = ["the heart is normal in size .", "no pleural effusion or pneumothorax .", "lungs are clear ."] * 5
    model, tokenizer = _tiny_model(reports)
    ids = [tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for r in reports[:2]]
    width = max(map(len, ids))
    report = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    features = model.encode_images(torch.randn(2, 3, 56, 56))
    embeds, attention, labels = model.build_inputs(model.visual_prefix(features), report, mask)
    n = model.prompt_length
    assert n == 1 + len(model.prompt_ids[0]) + 17 + 3 * 14 + len(model.prompt_ids[1])
    assert embeds.shape[1] == n + width and attention[:, :n].all()
    assert (labels[:, :n] == IGNORE_INDEX).all()
    assert torch.equal(labels[:, n:], report.masked_fill(mask == 0, IGNORE_INDEX))
    # the forward loss is the mean cross-entropy of exactly the report tokens (EOS included)
    loss = model(input_ids=report, attention_mask=mask, image_features=features)
    logits = model.llm(inputs_embeds=embeds, attention_mask=attention).logits
    terms = [F.cross_entropy(logits[b, n + t - 1], report[b, t], reduction="sum")
             for b in range(2) for t in range(width) if mask[b, t]]
    assert torch.allclose(loss, torch.stack(terms).mean(), atol=1e-5)
    assert all(not p.requires_grad for p in model.llm.parameters())  # the LLM is frozen


# ---------------------------------------------------------------- memories
def test_memory_files_carry_provenance_and_are_loaded_by_sha256(tmp_path):
    patterns = torch.randn(6, 4)
    digest = save_memory(tmp_path, "visual", patterns, {"split": "train", "rows": [{"study_id": "a"}] * 6})
    meta = json.loads((tmp_path / "visual.json").read_text())
    assert meta["sha256"] == digest and meta["n"] == 6 and meta["dim"] == 4 and meta["split"] == "train"
    assert torch.equal(load_memory(tmp_path, "visual", digest), patterns)
    with pytest.raises(MemoryMismatch, match="sha256"):
        load_memory(tmp_path, "visual", "0" * 64)
    blob = (tmp_path / "visual.safetensors").read_bytes()
    (tmp_path / "visual.safetensors").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(MemoryMismatch):
        load_memory(tmp_path, "visual")


def test_memories_refuse_studies_outside_the_train_split():
    train = Study("s1", "train", "lungs clear", "x")
    test = Study("t1", "test", "lungs clear", "x")
    check_train_only([train], "train", "report memory")
    with pytest.raises(UsageError, match="t1"):
        check_train_only([train, test], "train", "report memory")
    with pytest.raises(UsageError, match="not 'test'"):
        check_train_only([test], "test", "report memory")


def test_report_memory_sampling_is_proportional_to_label_frequency():
    import numpy as np

    labels = np.zeros((100, 14), dtype=np.int64)
    labels[:60, 13] = 1  # No Finding: 60 reports
    labels[60:90, 1] = 1  # Cardiomegaly: 30
    labels[90:, 9] = 1  # Pleural Effusion: 10
    picked = sample_reports(labels, total=50, seed=0)
    per_label = {j: sum(1 for _, k in picked if k == j) for j in (1, 9, 13)}
    assert per_label == {13: 30, 1: 15, 9: 5}
    assert all(labels[i, j] == 1 for i, j in picked) and picked == sample_reports(labels, 50, 0)


def test_recipes_need_a_stage_and_check_their_options():
    with pytest.raises(UsageError, match="--stage 1"):
        resolve_recipe(None, None, {}, "iu_xray/r2gen")
    name, recipe = resolve_recipe(2, None, {"lora": "true", "lora_targets": "q_proj,k_proj"}, "iu_xray/r2gen")
    assert name == "paper_iu" and recipe.llm == "Qwen/Qwen1.5-0.5B-Chat" and recipe.lora_targets == ["q_proj", "k_proj"]
    assert resolve_recipe(2, None, {}, "mimic_cxr/r2gen")[1].llm == "meta-llama/Llama-2-7b-chat-hf"
    with pytest.raises(UsageError, match="--dataset mimic_cxr/r2gen"):  # the paper recipe is R2Gen's MIMIC split
        resolve_recipe(2, None, {}, "mimic_cxr/official")
    assert resolve_recipe(2, "vit_mimic", {}, "mimic_cxr/official")[1].llm == "meta-llama/Llama-2-7b-chat-hf"
    assert resolve_recipe(1, None, {}, "mimic_cxr/official")[1].cam_top_k == 6
    with pytest.raises(UsageError, match="Did you mean"):
        resolve_recipe(1, "paper", {"cam_treshold": "0.5"}, "iu_xray/r2gen")
    with pytest.raises(UsageError, match="unknown preset"):
        resolve_recipe(2, "paper", {}, "iu_xray/r2gen")


def test_vision_encoder_is_a_config_choice():
    for spec, tokens in ((tiny_vision_config(), 17),):
        encoder = build_vision_encoder(spec)
        assert encoder(pixel_values=torch.randn(1, 3, 56, 56)).last_hidden_state.shape[1] == tokens
    from transformers import DINOv3ViTConfig

    dino = DINOv3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           patch_size=14, image_size=56, num_register_tokens=4).to_dict()
    assert build_vision_encoder(dino)(pixel_values=torch.randn(1, 3, 56, 56)).last_hidden_state.shape[1] \
        == vision_token_count(dino, 56) == 21
