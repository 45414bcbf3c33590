"""Weight dtypes by the names checkpoints and recipes record (``llm_dtype=bfloat16``).

A config stores a dtype as a string so ``config.json`` stays plain JSON; this is the one table that
turns it back into a ``torch.dtype`` for every model.
"""

from __future__ import annotations

from typing import Literal

import torch

DtypeName = Literal["float32", "bfloat16", "float16"]

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    return DTYPES[name]
