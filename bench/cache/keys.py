"""Which texts are "the same" for an annotator, and the content address of an annotation.

    key = sha256(namespace ‖ normaliser id ‖ sha256(normalised text))

``namespace`` is the scorer's annotation fingerprint (implementation version, checkpoint
sha256, annotation-affecting parameters), so a key can only collide if a namespace is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any


def _collapse_whitespace(text: str) -> str:
    # f1chexbert's tokenize(): strip, newlines -> space, \s+ -> space, strip
    return re.sub(r"\s+", " ", text.strip()).strip()


NORMALISERS: dict[str, Callable[[str], str]] = {
    "none": lambda text: text,
    "ws": _collapse_whitespace,
}


def normalise(text: str, normaliser: str) -> str:
    try:
        return NORMALISERS[normaliser](text)
    except KeyError:
        raise ValueError(f"unknown text normaliser {normaliser!r}; known: {sorted(NORMALISERS)}") from None


def text_hash(text: str) -> str:
    """sha256 of the UTF-8 text (after normalisation, if any)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(namespace: str, normaliser: str, text_sha256: str) -> str:
    return hashlib.sha256(f"{namespace}\x00{normaliser}\x00{text_sha256}".encode()).hexdigest()


def encode_value(value: Any, namespace: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"annotation for namespace {namespace!r} is not JSON-serialisable: {exc}") from None
