"""A byte-level BPE tokenizer trained on report texts, for tiny test checkpoints built offline.

The Hub is out of reach in tests and CI, so tiny models of the real classes need a tokenizer made
from local text: GPT-2's byte-level scheme trained with the ``tokenizers`` library on the train
reports. Special tokens are parameters because decoders differ (GPT-2: one ``<|endoftext|>`` for
BOS and EOS; Llama-style chat LLMs: ``<s>`` and ``</s>``).
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast


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
