"""Which studies a training run uses: train/val studies with an image and a report, their images on
disk, and never the test split. Shared by the LLM-based trainers (am_mrg, s2d_align)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rrg_bench.errors import DataError, UsageError
from rrg_bench.api.types import Study


def study_images(study: Study, mode: str) -> tuple[Path, ...]:
    """The images of a study a stage uses: all listed (authors) or the manifest's frontal view."""
    if mode == "frontal" or not study.image_paths:
        return (Path(study.frontal_image),) if study.frontal_image is not None else ()
    return tuple(Path(p) for p in study.image_paths)


def usable(studies: Sequence[Study], mode: str, split: str) -> tuple[list[Study], dict[str, int]]:
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


def training_splits(request: Any, recipe: Any, test_refusal: str) -> tuple[list[Study], list[Study], dict[str, int]]:
    """(train studies, validation studies, skipped counts) of a ``TrainRequest``; ``recipe`` gives
    ``images`` and ``val_limit``. ``test_refusal`` is the message when asked to train on test."""
    if request.train_split == "test":
        raise UsageError(test_refusal)
    train, skipped = usable(request.dataset.studies(request.train_split), recipe.images, request.train_split)
    if request.limit is not None:
        train = train[: request.limit]
    if not train:
        raise DataError(f"{request.dataset.name}/{request.train_split}: no study with an image and a report")
    check_images_exist(train, recipe.images, request.train_split)
    val: list[Study] = []
    if request.val_split and request.val_split != "test" and \
            request.val_split in getattr(request.dataset, "splits", (request.val_split,)):
        val, _ = usable(request.dataset.studies(request.val_split), recipe.images, request.val_split)
        if recipe.val_limit is not None:
            val = val[: recipe.val_limit]
        check_images_exist(val, recipe.images, request.val_split)
    return train, val, skipped
