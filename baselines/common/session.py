"""What every ``bench train`` trainer does around the shared loop, in one place: refuse the test
split, set up ``accelerate``, name the run (``recipe.json``, which a resume must match), build the
data loaders, record the same training-info fields, and hand back the checkpoint to evaluate.

A trainer opens a ``TrainingSession`` with its resolved recipe, adds what is its own (model, data,
extra identity and info fields) and calls ``fit``; the loop itself is ``baselines.common.trainloop``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrg_bench.baselines.common.accelerator import make_accelerator
from rrg_bench.baselines.common.splits import TrainingSplits, training_splits
from rrg_bench.baselines.common.trainloop import (
    EpochSampler,
    ModelIO,
    TrainerState,
    make_optimizer,
    prepare_run_dir,
    run_training,
    trained_checkpoint,
)

if TYPE_CHECKING:
    import torch

    from rrg_bench.api.training import TrainRequest
    from rrg_bench.baselines.common.presets import LoopRecipe


@dataclass
class TrainingSession:
    """One ``bench train`` run after its recipe is resolved: ``open`` -> ``prepare`` -> ``fit``."""

    request: TrainRequest
    preset: str
    recipe: LoopRecipe
    splits: TrainingSplits
    accelerator: Any
    out: Path
    resume_from: Path | None = None

    @classmethod
    def open(cls, request: TrainRequest, preset: str, recipe: LoopRecipe, *, model: str,
             images: str) -> TrainingSession:
        """Splits first (a test split is refused before anything is built), then ``accelerate``."""
        splits = training_splits(request, model=model, images=images, val_limit=recipe.val_limit)
        accelerator = make_accelerator(request, recipe.bf16)
        return cls(request, preset, recipe, splits, accelerator, Path(request.output_dir).expanduser().resolve())

    @property
    def main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    @property
    def seed(self) -> int:
        return self.request.seed

    def prepare(self, **extra: Any) -> Path | None:
        """Check the output directory against this run's identity (+ ``extra``); returns (and
        remembers) the checkpoint to resume from."""
        r, splits = self.request, self.splits
        identity = {
            "preset": self.preset, "recipe": self.recipe.model_dump(mode="json"), "dataset": r.dataset.name,
            "train_split": r.train_split, "val_split": r.val_split if splits.val else None,
            "n_train": len(splits.train), "n_val": len(splits.val), "seed": r.seed,
            "num_processes": self.accelerator.num_processes, **extra,
        }
        self.resume_from = prepare_run_dir(self.out, identity, r.resume, self.accelerator)
        return self.resume_from

    def cache_root(self, directory: str) -> Path:
        """Where a feature cache lives: the recipe's ``feature_cache_dir`` (shareable between runs) or
        ``<output>/feature_cache``."""
        return Path(directory).expanduser() if directory else self.out / "feature_cache"

    def info(self, kind: str, state: TrainerState, **extra: Any) -> dict[str, Any]:
        """The training-info record every saved model carries (+ the model's own ``extra`` fields)."""
        return {"kind": kind, "step": state.step, "preset": self.preset, "recipe": self.recipe.model_dump(mode="json"),
                "dataset": self.request.dataset.name, "train_split": self.request.train_split,
                "best_val_loss": state.best_val_loss, "skipped_studies": self.splits.skipped, **extra}

    def loaders(self, train: Any, val: Any, collate_fn: Callable | None = None) -> tuple[Any, Any]:
        """(train loader: the recipe's batch size, an ``EpochSampler`` for exact resume; validation
        loader in order, or None without validation examples)."""
        import torch

        recipe = self.recipe
        train_loader = torch.utils.data.DataLoader(train, batch_size=recipe.batch_size, collate_fn=collate_fn,
                                                   sampler=EpochSampler(len(train), self.seed, recipe.shuffle),
                                                   num_workers=recipe.num_workers)
        val_loader = (torch.utils.data.DataLoader(val, batch_size=recipe.batch_size, shuffle=False,
                                                  collate_fn=collate_fn, num_workers=recipe.num_workers)
                      if val is not None and len(val) else None)
        return train_loader, val_loader

    def fit(self, model: torch.nn.Module, loaders: tuple[Any, Any], io: ModelIO,
            start_fields: dict[str, Any] | None = None) -> Path:
        """Train the parameters that require grad; returns ``best/`` (validated runs) or ``final/``."""
        optimizer = make_optimizer(self.recipe, [p for p in model.parameters() if p.requires_grad])
        run_training(accelerator=self.accelerator, model=model, optimizer=optimizer, train_loader=loaders[0],
                     val_loader=loaders[1], settings=self.recipe, out=self.out, seed=self.seed,
                     resume_from=self.resume_from, progress=self.request.progress and self.main, io=io,
                     start_fields=start_fields)
        return trained_checkpoint(self.out)
