"""SRR-BERT's network side (imports torch): RadEval's ``SRRBert.forward`` on local files.

Sentences are classified in batches of ``batch_size`` (RadEval: 4) with BertTokenizer
(max_length 512, padded per batch); a label is on when sigmoid(logit) > 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


class SRRBertClassifier:
    def __init__(self, model_dir: Path, tokenizer_dir: Path, num_labels: int, device: str = "cpu") -> None:
        from transformers import BertForSequenceClassification, BertTokenizer

        self.device = torch.device(device)
        self.model = BertForSequenceClassification.from_pretrained(str(model_dir), num_labels=num_labels)
        self.model.to(self.device).eval()
        self.tokenizer = BertTokenizer.from_pretrained(str(tokenizer_dir))
        self.num_labels = num_labels

    @torch.no_grad()
    def classify(self, sentences: Sequence[str], batch_size: int,
                 advance: Callable[[int], Any] | None = None) -> np.ndarray:
        """0/1 labels per sentence, shape (len(sentences), num_labels)."""
        out = [np.zeros((0, self.num_labels), dtype=np.int8)]
        for b in range(0, len(sentences), max(1, batch_size)):
            batch = list(sentences[b:b + max(1, batch_size)])
            enc = self.tokenizer(batch, add_special_tokens=True, max_length=512, padding=True, truncation=True,
                                 return_attention_mask=True, return_tensors="pt")
            logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits
            out.append((torch.sigmoid(logits) > 0.5).cpu().numpy().astype(np.int8))
            if advance is not None:
                advance(len(batch))
        return np.concatenate(out, axis=0)
