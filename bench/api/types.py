"""The few value types that flow down the pipeline: manifest -> Study -> Generation -> scores.

They are plain frozen dataclasses so every stage can be tested without the others, and so a
generator written by someone else only needs to know these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Study:
    """One imaging study of a split, with its reference report resolved and hash-checked.

    ``image_paths`` are absolute paths under the user's data root (they may be absent on
    disk for text-only work; image generators check). ``frontal_image`` is the study's
    frontal view as named by the manifest — image index is not view (IU X-Ray ``0.png``
    is sometimes lateral).
    """

    study_id: str
    split: str
    reference: str
    reference_sha256: str
    image_paths: tuple[Path, ...] = ()
    frontal_image: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Generation:
    """A generator's output for one study. ``text`` may be empty; that is a valid report."""

    study_id: str
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)
