"""Validated parameters: how ``--model-arg key=value`` and ``nlg[tok=ptb]`` become typed settings.

Generators and scorers declare a pydantic ``Params`` model; a typo or a wrong type is a usage
error naming the entry and the field, never a silently ignored option.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from rrg_bench.errors import UsageError

P = TypeVar("P", bound=BaseModel)


class NoParams(BaseModel):
    """The parameters of an entry that takes none: any key is an error."""

    model_config = ConfigDict(extra="forbid")


def validated(model: type[P], params: dict[str, Any], what: str) -> P:
    """``model(**params)``, with a one-line ``UsageError`` naming ``what`` and each bad field."""
    try:
        return model(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"{what}: invalid parameters: {problems}") from None
