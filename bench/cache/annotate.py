"""Annotating texts through the cache: each unique text is annotated once, ever."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from rrg_bench.cache.keys import encode_value, normalise, text_hash
from rrg_bench.cache.store import AnnotationCache


def annotate_cached(cache: AnnotationCache | None, namespace: str, texts: Sequence[str],
                    annotate: Callable[[list[str]], list[Any]], *,
                    normaliser: str = "none") -> tuple[list[Any], int, int]:
    """Values for ``texts`` (aligned), annotating only unique texts not in the cache.

    ``annotate`` is called at most once, with the unique missing texts *after*
    normalisation, and must return one JSON-serialisable value per text. Values always
    come back JSON round-tripped (lists, not tuples), so a cold and a warm run return
    identical objects. Returns (values, hits, misses), counted over unique texts.
    """
    normalised = [normalise(t, normaliser) for t in texts]
    hashes = [text_hash(t) for t in normalised]
    first: dict[str, str] = {}
    for h, t in zip(hashes, normalised):
        first.setdefault(h, t)
    unique = list(first)
    found = cache.get_many(namespace, unique, normaliser=normaliser) if cache is not None else {}
    missing = [h for h in unique if h not in found]
    if missing:
        fresh = annotate([first[h] for h in missing])
        if len(fresh) != len(missing):
            raise RuntimeError(f"annotator for {namespace!r} returned {len(fresh)} values for {len(missing)} texts")
        new = {h: json.loads(encode_value(v, namespace)) for h, v in zip(missing, fresh)}
        if cache is not None:
            cache.put_many(namespace, new, normaliser=normaliser)
        found.update(new)
    return [found[h] for h in hashes], len(unique) - len(missing), len(missing)
