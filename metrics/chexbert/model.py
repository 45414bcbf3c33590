"""The CheXbert labeler network and its f1chexbert-compatible inference, batched.

Why our own module instead of calling f1chexbert 0.0.2: upstream labels one report per
forward pass, downloads inside its constructor, loads the checkpoint with ``strict=False``
(a renamed key would silently leave random weights) and fetches bert-base-uncased files from
the Hub. This module builds the same network (bert-base-uncased ``BertModel`` + 13 x
Linear(h, 4) + Linear(h, 2) on the [CLS] state), loads the same ``chexbert.pth`` strictly,
tokenises exactly as upstream, and runs de-duplicated, length-sorted padded batches under
``torch.inference_mode()``. The parity test (tests/metrics/test_chexbert_parity.py) shows the
labels equal upstream's for every report of an IU X-Ray test + train sample.

Codes returned are CheXbert's classes (``metrics.common.labels``): 0 blank, 1 positive,
2 negative, 3 uncertain; the No Finding head has two classes (0 blank, 1 positive).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertModel, BertTokenizer

from rrg_bench.errors import BenchError
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS

#: bump when anything that can change a label changes (tokenisation, truncation, heads)
IMPL_VERSION = "1"
MAX_IDS = 512

#: bert-base-uncased's config.json (google-bert/bert-base-uncased), built in so no Hub access
#: is needed; only these fields shape the network
BERT_BASE_UNCASED: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
}
ARCH_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
               "position_embedding_type", "pad_token_id")
#: buffers older transformers versions saved in state dicts; accepted only if equal to ours
_LEGACY_BUFFERS = ("bert.embeddings.position_ids",)


class CheXbertNet(nn.Module):
    """f1chexbert's ``bert_labeler(inference=True)``: same submodule names, so same state dict."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.bert = BertModel(config)  # with pooler: the checkpoint holds its weights (unused)
        self.dropout = nn.Dropout(0.1)  # inactive in eval; kept for the module layout
        hidden = config.hidden_size  # = the pooler's (and each head's) input width
        heads = [nn.Linear(hidden, 4, bias=True) for _ in range(13)] + [nn.Linear(hidden, 2, bias=True)]
        self.linear_heads = nn.ModuleList(heads)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        cls = self.bert(input_ids, attention_mask=attention_mask)[0][:, 0, :]
        cls = self.dropout(cls)
        return [head(cls) for head in self.linear_heads]


# ---- configuration and tokenizer ---------------------------------------------------------

def load_config(path: str | Path | None) -> BertConfig:
    """bert-base-uncased's values, or a local ``config.json`` (file or directory holding it)."""
    if path is None:
        return BertConfig(**BERT_BASE_UNCASED)
    p = Path(path).expanduser()
    file = p / "config.json" if p.is_dir() else p
    if not file.is_file():
        raise BenchError(f"CheXbert config: {file} does not exist (give a config.json or a directory holding one)")
    try:
        return BertConfig.from_json_file(str(file))
    except (OSError, ValueError) as exc:
        raise BenchError(f"CheXbert config: {file} is not a BERT config.json ({exc})") from None


def load_tokenizer(path: str | Path) -> BertTokenizer:
    """The slow ``BertTokenizer`` (upstream's class) from a vocab.txt or a tokenizer directory.

    A bare vocab.txt gets bert-base-uncased's tokenizer settings (lower-casing on, accents
    stripped with it, Chinese characters split) -- its tokenizer_config.json sets only
    ``do_lower_case: true``.
    """
    p = Path(path).expanduser()
    try:
        if p.is_file():
            return BertTokenizer(vocab_file=str(p), do_lower_case=True)
        if p.is_dir() and (p / "vocab.txt").is_file():
            return BertTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BenchError(f"CheXbert tokenizer: cannot load {p} ({exc})") from None
    raise BenchError(f"CheXbert tokenizer: {p} is neither a vocab.txt nor a directory holding vocab.txt")


def normalise_report(text: str) -> str:
    """Upstream ``tokenize()``'s cleaning: strip, newlines and whitespace runs -> one space."""
    return re.sub(r"\s+", " ", text.strip()).strip()


def encode(text: str, tokenizer: BertTokenizer) -> list[int]:
    """Input ids exactly as f1chexbert 0.0.2: [CLS] tokens [SEP], >512 -> first 511 + [SEP],
    an empty report -> [CLS] [SEP]."""
    tokens = tokenizer.tokenize(normalise_report(text))
    if not tokens:
        return [tokenizer.cls_token_id, tokenizer.sep_token_id]
    token_ids = cast(list[int], tokenizer.convert_tokens_to_ids(tokens))  # a list in, a list out
    ids = tokenizer.build_inputs_with_special_tokens(token_ids)
    if len(ids) > MAX_IDS:
        ids = ids[:MAX_IDS - 1] + [tokenizer.sep_token_id]
    return ids


def tokenizer_fingerprint(tokenizer: BertTokenizer) -> str:
    """sha256 of the vocabulary (in id order) and the settings that change tokenisation."""
    basic = tokenizer.basic_tokenizer
    settings = {"do_lower_case": basic.do_lower_case, "strip_accents": basic.strip_accents,
                "tokenize_chinese_chars": basic.tokenize_chinese_chars,
                "never_split": sorted(basic.never_split or ()),
                "max_input_chars_per_word": tokenizer.wordpiece_tokenizer.max_input_chars_per_word}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for token, _ in sorted(tokenizer.vocab.items(), key=lambda kv: kv[1]):
        digest.update(token.encode("utf-8") + b"\n")
    return digest.hexdigest()


def config_fingerprint(config: BertConfig) -> dict[str, Any]:
    return {k: getattr(config, k) for k in ARCH_FIELDS}


# ---- checkpoint --------------------------------------------------------------------------

def read_state_dict(path: str | Path) -> OrderedDict[str, torch.Tensor]:
    """``model_state_dict`` of a CheXbert checkpoint with ``module.`` removed (as upstream).

    Loaded with ``weights_only=True`` (the HF file holds only tensors and an OrderedDict) and
    memory-mapped where the format allows, so the optimizer state in the 1.3 GB file is not
    read into memory.
    """
    path = Path(path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as exc:  # unreadable, truncated, not a torch file, unsafe pickle
        raise BenchError(f"CheXbert checkpoint {path}: cannot load ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(obj, dict) or "model_state_dict" not in obj:
        keys = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise BenchError(f"CheXbert checkpoint {path}: no 'model_state_dict' entry (found {keys}); "
                         f"expected the chexbert.pth of StanfordAIMI/RRG_scorers")
    return OrderedDict((k.replace("module.", ""), v) for k, v in obj["model_state_dict"].items())


def load_strict(model: CheXbertNet, state: OrderedDict[str, torch.Tensor], source: str | Path) -> None:
    """Load every parameter; missing or unexpected keys and shape mismatches are errors."""
    expected = model.state_dict()
    state = OrderedDict(state)
    for name in _LEGACY_BUFFERS:
        if name in state and name not in expected:
            legacy = state.pop(name)
            n = legacy.shape[-1]
            if not torch.equal(legacy.reshape(-1).to(torch.long), torch.arange(n)):
                raise BenchError(f"CheXbert checkpoint {source}: {name} is not 0..{n - 1}; not a standard BERT")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if shapes:
            parts.append("shape mismatches: " + show(
                [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in shapes]))
        raise BenchError(f"CheXbert checkpoint {source} does not fit the bert-base-uncased CheXbert network "
                         f"({'; '.join(parts)}); check the file, or the config= parameter if you set one")
    model.load_state_dict(state, strict=True)


# ---- the labeler -------------------------------------------------------------------------

class CheXbertLabeler:
    """Checkpoint + tokenizer -> (n, 14) int8 CheXbert codes for report texts."""

    def __init__(self, checkpoint: str | Path, tokenizer: str | Path, config: str | Path | None = None,
                 device: str = "cpu") -> None:
        self.checkpoint = Path(checkpoint)
        self.tokenizer = load_tokenizer(tokenizer)
        self.config = load_config(config)
        if self.tokenizer.vocab_size != self.config.vocab_size:
            raise BenchError(f"CheXbert tokenizer {tokenizer} has {self.tokenizer.vocab_size} tokens but the config "
                             f"expects {self.config.vocab_size}; use bert-base-uncased's vocab.txt")
        self.device = torch.device(device)
        model = CheXbertNet(self.config)
        load_strict(model, read_state_dict(self.checkpoint), self.checkpoint)
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def encode(self, text: str) -> list[int]:
        return encode(text, self.tokenizer)

    def batches(self, texts: Sequence[str], batch_size: int = 16
                ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """``(rows, input ids, attention mask)`` on the device, ``rows`` indexing ``texts``.

        Sorting by length keeps padding small; the attention mask makes each row's result
        independent of its batch mates (up to float rounding). Shared by the labels and by
        SembScore's embeddings, so both see the same inputs.
        """
        ids = [self.encode(t) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
        pad = self.tokenizer.pad_token_id
        step = max(1, batch_size)
        for start in range(0, len(order), step):
            rows = order[start:start + step]
            width = max(len(ids[i]) for i in rows)
            batch = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.float)
            for r, i in enumerate(rows):
                batch[r, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                mask[r, :len(ids[i])] = 1.0
            yield rows, batch.to(self.device), mask.to(self.device)

    def label(self, texts: Sequence[str], batch_size: int = 16,
              advance: Callable[[int], Any] | None = None) -> np.ndarray:
        """Codes for ``texts`` (callers de-duplicate)."""
        out = np.zeros((len(texts), len(CHEXPERT_LABELS)), dtype=np.int8)
        with torch.inference_mode():
            for rows, batch, mask in self.batches(texts, batch_size):
                logits = self.model(batch, mask)
                out[rows] = torch.stack([head.argmax(dim=1) for head in logits], dim=1).cpu().numpy()
                if advance is not None:
                    advance(len(rows))
        return out
