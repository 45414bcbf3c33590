"""Named presets + type-checked ``--set key=value`` overrides -> a validated recipe, for every model.

One place so that every ``bench train --model M`` refuses unknown presets/options with the same
"did you mean" hint and parses ``none``/lists/literals the same way.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from rrg_bench.errors import UsageError

R = TypeVar("R", bound=BaseModel)

_NONE_WORDS = {"none", "null", ""}


def describe_annotation(annotation: Any) -> str:
    """A field type in words, for an error message ("one of a, b" for literals)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(map(str, args))
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def parse_override(cls: type[BaseModel], name: str, raw: str, *, describe_expected: bool = False) -> Any:
    """The string ``raw`` of ``--set name=raw`` as the type of ``cls.name``: ``none``/``null``/empty
    for optional fields, comma-separated items for lists. ``describe_expected`` adds the expected
    type to the error message."""
    annotation = cls.model_fields[name].annotation
    if type(None) in typing.get_args(annotation) and raw.strip().lower() in _NONE_WORDS:
        return None
    if typing.get_origin(annotation) is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    try:
        return TypeAdapter(annotation).validate_python(raw, strict=False)
    except ValidationError as exc:
        expected = f" (expected {describe_annotation(annotation)})" if describe_expected else ""
        raise UsageError(f"--set {name}={raw!r}: {exc.errors()[0]['msg']}{expected}") from None


def _did_you_mean(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=3)
    return f" Did you mean {', '.join(close)}?" if close else ""


def resolve_preset(cls: type[R], label: str, name: str, presets: Mapping[str, Mapping[str, Any]],
                   overrides: Mapping[str, Any] | None, *, list_options: bool = False,
                   describe_expected: bool = False) -> R:
    """Preset ``name`` of ``presets`` + string overrides -> a validated ``cls``. Errors start with
    ``label`` (e.g. "am_mrg stage 2"); ``list_options`` lists every option when no name is close."""
    if name not in presets:
        raise UsageError(f"{label}: unknown preset {name!r}.{_did_you_mean(name, presets)} "
                         f"Presets: {', '.join(presets)}")
    values = dict(presets[name])
    for key, raw in (overrides or {}).items():
        if key not in cls.model_fields:
            hint = _did_you_mean(key, cls.model_fields)
            if not hint and list_options:
                hint = f" Options: {', '.join(cls.model_fields)}."
            raise UsageError(f"{label}: unknown training option {key!r}.{hint}")
        values[key] = parse_override(cls, key, str(raw), describe_expected=describe_expected)
    try:
        return cls(**values)
    except ValidationError as exc:  # cross-field problems surface here
        raise UsageError(f"{label} recipe {name!r}: {exc.errors()[0]['msg']}") from None
