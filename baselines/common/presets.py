"""Named presets + type-checked ``--set key=value`` overrides -> a validated recipe, for every model,
and the recipe fields every model's training run shares.

One place so that every ``bench train --model M`` refuses unknown presets/options with the same
"did you mean" hint, parses ``none``/lists/literals the same way, and spells the loop's settings
(optimiser, schedule, evaluation, checkpoints) with the same names.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from rrg_bench.errors import UsageError

R = TypeVar("R", bound=BaseModel)

_NONE_WORDS = {"none", "null", ""}


class LoopRecipe(BaseModel):
    """The fields ``baselines.common.trainloop`` and the data loaders read. Defaults are the LLM
    models' (am_mrg, s2d_align); a model redefines a field to change its default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    #: "cosine_epoch": cosine annealing stepped once per epoch to ``min_lr`` (a field of the models that use it)
    schedule: Literal["constant", "cosine", "cosine_epoch"] = "cosine"
    warmup_ratio: float = 0.0
    batch_size: int = 2
    grad_accum: int = 1
    grad_clip: float | None = None
    epochs: int = 10
    max_batches_per_epoch: int | None = None
    max_steps: int | None = None
    shuffle: bool = True
    bf16: bool = True
    eval_every_steps: int = 0  # 0: after every epoch
    val_limit: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    save_every_steps: int = 0  # 0: after every epoch
    keep_checkpoints: int = 2
    num_workers: int = 0


class ImageTextRecipe(LoopRecipe):
    """What the trainers of am_mrg and s2d_align add to the loop: which images of a study, random
    tiny models, and how train reports are labelled. s2d_align labels nothing; its recipe keeps
    ``labeler``/``uncertain`` (it began as am_mrg's) so that runs recorded before stay resumable."""

    # -- labels (am_mrg: stage-1 targets, report-memory groups) --
    labeler: Literal["auto", "chexbert", "chexpert_rules"] = "auto"
    uncertain: Literal["positive", "negative"] = "positive"
    #: "all": every image of a study (AM-MRG's authors); "frontal": the manifest's frontal view only
    images: Literal["all", "frontal"] = "all"
    #: random tiny models of the same classes (offline smoke runs and tests)
    tiny: bool = False
    tiny_image_size: int = 56


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
    # pydantic types a field's annotation as optional; a model field always has one (``x: None`` is NoneType)
    adapter: TypeAdapter[Any] = TypeAdapter(annotation if annotation is not None else type(None))
    try:
        return adapter.validate_python(raw, strict=False)
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
