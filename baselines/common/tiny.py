"""Tiny, randomly initialised pieces of the real classes that every model's ``tiny`` preset builds
offline: a byte-level BPE tokenizer trained on report texts, a 2-layer Llama-style LLM and a 2-layer
ViT.

The Hub is out of reach in tests and CI, so tiny checkpoints need a tokenizer made from local text:
GPT-2's byte-level scheme trained with the ``tokenizers`` library on the train reports. Special
tokens are parameters because decoders differ (GPT-2: one ``<|endoftext|>`` for BOS and EOS;
Llama-style chat LLMs: ``<s>`` and ``</s>``, the ``BOS``/``EOS``/``PAD`` below).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

#: the special tokens of a Llama-style chat LLM (am_mrg, s2d_align)
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
#: width of the tiny encoders (ViT, Q-Former, report BERT)
WIDTH = 32


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 512,
    *,
    eos: str = "<|endoftext|>",
    pad: str = "<pad>",
    bos: str | None = None,
    extra_special: tuple[str, ...] = (),
) -> PreTrainedTokenizerFast:
    """Byte-level BPE on ``texts``. ``bos=None`` reuses ``eos`` as BOS (GPT-2's convention).

    Special token ids follow the order ``eos, pad[, bos], *extra_special`` (0, 1, …)."""
    specials = [eos, pad] + ([bos] if bos is not None else []) + list(extra_special)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    extra = {"additional_special_tokens": list(extra_special)} if extra_special else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos if bos is not None else eos, eos_token=eos, pad_token=pad, **extra
    )


def train_chat_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """``train_bpe_tokenizer`` with a Llama-style chat LLM's ``<s>``/``</s>``/``<pad>``."""
    return train_bpe_tokenizer(texts, vocab_size, eos=EOS, pad=PAD, bos=BOS)


def build_tiny_llm(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Any:
    """A 2-layer ``LlamaForCausalLM`` (64-d, untied head) sized to ``tokenizer``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=len(tokenizer), max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    return LlamaForCausalLM(config)


def tiny_vit_config(image_size: int = 56) -> dict[str, Any]:
    """A 2-layer ViT at ``image_size`` px, patch 14 (56 px: CLS + 16 tokens), as a saved config dict."""
    from transformers import ViTConfig

    return ViTConfig(hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     image_size=image_size, patch_size=14).to_dict()
