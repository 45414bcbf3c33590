"""ARM-L, AM-MRG's Mamba encoder, at tiny width on CPU: the pure-PyTorch selective scan against the
scan's closed form, the switch to the fused kernel, the four-way token order, forward/backward, the
paper-size shapes (meta device) and strict loading of MambaXray-VL's checkpoint layout."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from rrg_bench.baselines.am_mrg import selective_scan as scan_module
from rrg_bench.baselines.am_mrg.arm import ARMConfig, ARMEncoder, vertical_order
from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig, paper_qformer_config
from rrg_bench.baselines.am_mrg.encoders import (
    arm_large_config,
    build_vision_encoder,
    load_arm_weights,
    tiny_arm_config,
)
from rrg_bench.baselines.am_mrg.selective_scan import scan_backend, selective_scan, selective_scan_reference
from rrg_bench.errors import DataError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scan_inputs(b=2, d=3, n=4, length=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    return dict(u=r(b, d, length), delta=r(b, d, length), A=-torch.rand(d, n, generator=g, dtype=dtype) - 0.1,
                B=r(b, n, length), C=r(b, n, length), D=r(d), z=r(b, d, length), delta_bias=r(d))


def closed_form(u, delta, A, B, C, D, z, delta_bias):
    """y_t = Σ_{s≤t} C_t·(Π_{r=s+1..t} exp(Δ_r A)) Δ_s B_s u_s + D u_t, gated by silu(z): no recurrence."""
    dt = torch.nn.functional.softplus(delta + delta_bias[:, None])  # (b, d, L)
    log_decay = torch.cumsum(dt.unsqueeze(-1) * A[:, None, :], dim=2)  # (b, d, L, n): Σ_{r≤t} Δ_r A
    length = u.shape[-1]
    y = torch.zeros_like(u)
    for t in range(length):
        for s in range(t + 1):
            carry = torch.exp(log_decay[:, :, t] - log_decay[:, :, s])  # Π_{r=s+1..t}
            drive = (dt[:, :, s] * u[:, :, s]).unsqueeze(-1) * B[:, None, :, s]  # (b, d, n)
            y[:, :, t] += torch.einsum("bdn,bn->bd", carry * drive, C[:, :, t])
    y = y + u * D[:, None]
    return y * torch.nn.functional.silu(z)


def test_reference_scan_equals_the_closed_form():
    x = _scan_inputs()
    got = selective_scan_reference(**x, delta_softplus=True)
    want = closed_form(**x).float()
    assert got.dtype == torch.float64 and torch.allclose(got.float(), want, atol=1e-5)


def test_the_fused_kernel_is_used_only_on_a_gpu_and_gets_the_same_arguments(monkeypatch):
    x = {k: v.float() for k, v in _scan_inputs().items()}
    assert scan_backend(x["u"]) == "reference"  # CPU: never the kernel, whether installed or not
    calls = []

    def fake_selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                               return_last_state=False):  # mamba_ssm's signature
        calls.append(u.shape)
        return selective_scan_reference(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus)

    fake = types.ModuleType(scan_module.FUSED_MODULE)
    fake.selective_scan_fn = fake_selective_scan_fn
    monkeypatch.setitem(sys.modules, scan_module.FUSED_MODULE, fake)
    assert scan_backend(x["u"]) == "reference"
    monkeypatch.setattr(scan_module, "on_gpu", lambda tensor: True)
    assert scan_backend(x["u"]) == "fused"
    fused = selective_scan(**x, delta_softplus=True)
    assert calls == [x["u"].shape]
    assert torch.equal(fused, selective_scan_reference(**x, delta_softplus=True))


def test_vertical_order_transposes_the_patch_grid_keeping_the_class_token_in_the_middle():
    # 3 x 3 patches numbered row-major, class token (-1) inserted at position 10 // 2 = 5 as ARM does
    patches = list(range(9))
    tokens = torch.tensor(patches[:5] + [-1] + patches[5:], dtype=torch.float32).view(1, 1, 10)
    columns = vertical_order(tokens).view(-1).tolist()
    assert columns == [0, 3, 6, 1, 4, -1, 7, 2, 5, 8]
    assert torch.equal(vertical_order(vertical_order(tokens)), tokens)


def test_tiny_arm_forward_and_backward_on_cpu():
    torch.manual_seed(0)
    encoder = build_vision_encoder(tiny_arm_config())
    assert isinstance(encoder, ARMEncoder)
    pixels = torch.randn(2, 3, 56, 56)
    tokens = encoder(pixel_values=pixels).last_hidden_state
    assert tokens.shape == (2, 17, 32) and torch.isfinite(tokens).all()
    tokens.pow(2).mean().backward()
    without = sorted(n for n, p in encoder.named_parameters() if p.grad is None or not p.grad.abs().sum())
    assert without == ["head.bias", "head.weight"]  # only the unused classifier head gets no gradient
    # every scan direction has its own parameters, and each one receives gradient
    mixer = encoder.layers[0].mixer
    assert all(getattr(mixer, f"A{s}_log").grad.abs().sum() > 0 for s in ("", "_b", "_c", "_c_b"))
    # a study's images are encoded independently: batch mates do not change a token sequence
    encoder.eval()
    with torch.no_grad():
        alone = encoder(pixel_values=pixels[:1]).last_hidden_state
        together = encoder(pixel_values=pixels).last_hidden_state[:1]
    assert torch.allclose(alone, together, atol=1e-5)


def test_arm_large_has_the_papers_shape_and_239_prefix_positions():
    config = AMMRGConfig(vision_config=arm_large_config(), qformer_config=paper_qformer_config(1408))
    assert config.num_vision_tokens() == 197 and config.prefix_length() == 239
    with torch.device("meta"):  # shapes only; the forward on one block (24 scans of 197 steps would take long)
        encoder = build_vision_encoder(config.vision_config)
        one_block = build_vision_encoder({**config.vision_config, "num_hidden_layers": 1})
        tokens = one_block(pixel_values=torch.empty(1, 3, 224, 224)).last_hidden_state
    assert tokens.shape == (1, 197, 1024)
    mixer = encoder.layers[0].mixer
    assert (mixer.in_proj.weight.shape, mixer.x_proj.weight.shape, mixer.dt_proj.weight.shape) == \
        ((2048, 1024), (96, 1024), (1024, 64))
    assert encoder.layers[0].mlp.w1.weight.shape == (2730, 1024) and len(encoder.layers) == 24


def test_mambaxray_clip_checkpoint_loads_strictly(tmp_path):
    torch.manual_seed(1)
    source = ARMEncoder(ARMConfig.model_validate(tiny_arm_config()))
    clip = {f"visual_encoder.{k}": v for k, v in source.state_dict().items()}
    clip.update({"text_encoder.embeddings.word_embeddings.weight": torch.zeros(4, 2), "logit_scale": torch.ones(()),
                 "vision_proj.weight": torch.zeros(2, 32)})
    torch.save({"model": clip, "config": {"type": "large"}, "epoch": 3, "step": 9}, tmp_path / "MambaXrayCLIP-L.pth")
    target = build_vision_encoder(tiny_arm_config())
    provenance = load_arm_weights(target, str(tmp_path / "MambaXrayCLIP-L.pth"))
    assert provenance["tensors"] == len(source.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    del clip["visual_encoder.layers.1.mixer.A_c_b_log"]
    torch.save({"model": clip}, tmp_path / "broken.pth")
    with pytest.raises(DataError, match="A_c_b_log"):
        load_arm_weights(target, str(tmp_path / "broken.pth"))
