"""A BLIP-2 checkpoint in LAVIS's layout made from a tiny Q-Former, for am_mrg's ``qformer_init`` tests.

No BLIP-2 file is downloaded in tests: our ``Blip2QFormerModel`` tensors are renamed back to LAVIS's
``Qformer.bert.*`` names (the inverse of ``baselines.am_mrg.qformer.lavis_key``), offset so a load is
visible, and joined by the tensors a real BLIP-2 checkpoint also holds that AM-MRG does not load.
"""

from __future__ import annotations

import torch


def lavis_qformer_state(qformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in qformer.state_dict().items():
        lavis = ("embeddings.LayerNorm." + key.split(".")[-1] if key.startswith("layernorm.")
                 else key.replace(".attention.attention.", ".attention.self.").replace(
                     ".crossattention.attention.", ".crossattention.self."))
        out["Qformer.bert." + lavis] = value.clone() + 1.0
    width = qformer.config.hidden_size
    out.update({"query_tokens": torch.zeros(1, 32, width), "t5_proj.weight": torch.zeros(4, width),
                "Qformer.bert.embeddings.word_embeddings.weight": torch.zeros(10, width),
                "Qformer.bert.encoder.layer.0.intermediate.dense.weight": torch.zeros(64, width)})
    return out
