"""Which studies a training run uses: train/val studies with an image and a report, their images on
disk, and never the test split — for training or for validation.

Validation picks the checkpoint that is kept (``best/``) and stops training early, so a test split
used there would leak into the model as surely as one trained on; both are refused with the option
to change. Every trainer (anat_attn, am_mrg, s2d_align) goes through ``training_splits``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rrg_bench.api.types import Study
from rrg_bench.errors import DataError, UsageError

if TYPE_CHECKING:
    from rrg_bench.api.training import TrainRequest

TEST_SPLIT = "test"


def study_images(study: Study, mode: str) -> tuple[Path, ...]:
    """The images of a study a stage uses: all listed (authors) or the manifest's frontal view."""
    if mode == "frontal" or not study.image_paths:
        return (Path(study.frontal_image),) if study.frontal_image is not None else ()
    return tuple(Path(p) for p in study.image_paths)


def usable(studies: Sequence[Study], mode: str) -> tuple[list[Study], dict[str, int]]:
    """Studies with an image (per ``mode``) and a non-empty reference; the rest are counted, not hidden."""
    kept, skipped = [], {"no_image": 0, "empty_reference": 0}
    for s in studies:
        if not study_images(s, mode):
            skipped["no_image"] += 1
        elif not s.reference.strip():
            skipped["empty_reference"] += 1
        else:
            kept.append(s)
    return kept, skipped


def check_images_exist(studies: Sequence[Study], mode: str, split: str) -> None:
    missing = [(s.study_id, p) for s in studies for p in study_images(s, mode) if not p.is_file()]
    if missing:
        first = ", ".join(f"{sid} ({p})" for sid, p in missing[:5])
        raise DataError(f"{len(missing)} {split} images are not on disk, e.g. {first}. Check --data-root "
                        "(or train on fewer studies: --limit N, --set val_limit=N).")


def refuse_test_splits(request: TrainRequest, model: str) -> None:
    """``--train-split test`` and ``--val-split test`` are usage errors naming the option."""
    for option, split in (("--train-split", request.train_split), ("--val-split", request.val_split)):
        if split == TEST_SPLIT:
            raise UsageError(f"{model} never uses the test split for training or validation: {option} test is "
                             f"refused; choose {option} {'train' if option == '--train-split' else 'val'}")


@dataclass(frozen=True)
class TrainingSplits:
    train: list[Study]
    val: list[Study]
    #: train studies left out, by reason ("no_image", "empty_reference")
    skipped: dict[str, int] = field(default_factory=dict)


def training_splits(request: TrainRequest, *, model: str, images: str, val_limit: int | None) -> TrainingSplits:
    """The train and validation studies of a ``TrainRequest``: ``images`` ("all" or "frontal") says
    which images a study needs, ``val_limit`` caps the validation set. A validation split the
    dataset does not have (or ``--val-split ''``) means no validation."""
    refuse_test_splits(request, model)
    train, skipped = usable(request.dataset.studies(request.train_split), images)
    if request.limit is not None:
        train = train[: request.limit]
    if not train:
        raise DataError(f"{request.dataset.name}/{request.train_split}: no study with an image and a report")
    check_images_exist(train, images, request.train_split)
    val: list[Study] = []
    if request.val_split and request.val_split in getattr(request.dataset, "splits", (request.val_split,)):
        val, _ = usable(request.dataset.studies(request.val_split), images)
        if val_limit is not None:
            val = val[:val_limit]
        check_images_exist(val, images, request.val_split)
    return TrainingSplits(train, val, skipped)
