"""Right-padding token id sequences into a batch, the same way for every trainer's collator, and the
label value the loss skips (prompt, image and padding positions)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: label of positions without a target: ``torch.nn.functional.cross_entropy``'s default ``ignore_index``
IGNORE_INDEX = -100


def pad_token_ids(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids right-padded with ``pad_id``, attention mask: 1 on real tokens), both ``long``. The mask,
    not the pad id, tells padding apart: a pad id equal to EOS must not hide the EOS target."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask
