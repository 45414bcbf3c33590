"""``bench train``: train a registered trainable generator on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rrg_bench.cli.common import handles_errors, out
from rrg_bench.cli.options import DataRootOpt, DatasetOpt, DeviceOpt, ProgressOpt, SeedOpt, key_values


@handles_errors
def train(
    model: Annotated[str, typer.Option("--model", help="A trainable generator (see `bench ls trainers`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint directory to write (resumed if present).")],
    dataset: DatasetOpt = "demo",
    data_root: DataRootOpt = None,
    preset: Annotated[
        Optional[str], typer.Option("--preset", help="Named training recipe (see the model's card).")
    ] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a recipe field, key=value (repeatable).")
    ] = None,
    stage: Annotated[Optional[int], typer.Option("--stage", help="Stage of a multi-stage recipe.")] = None,
    train_split: Annotated[str, typer.Option("--train-split", help="Split to train on (never test).")] = "train",
    val_split: Annotated[
        str, typer.Option("--val-split", help="Split for validation / selection (never test).")
    ] = "val",
    limit: Annotated[
        Optional[int], typer.Option("--limit", help="Only the first N training studies (smoke runs).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue from the last checkpoint in --output.")
    ] = True,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    progress: ProgressOpt = True,
) -> None:
    """Train a generator on a dataset's train split; the output directory is a loadable checkpoint.

    Works under [bold]accelerate launch -m rrg_bench train …[/bold] for multi-GPU / multi-node training.
    """
    from rrg_bench.api.training import TrainRequest
    from rrg_bench.errors import UsageError
    from rrg_bench.registry import registry

    registry("generators").entry(model)  # unknown names fail with suggestions
    trainers = registry("trainers")
    if model not in trainers:
        raise UsageError(f"generator {model!r} is not trainable with `bench train` "
                         f"(trainable: {', '.join(trainers.names()) or 'none yet'})")
    request = TrainRequest(dataset=registry("datasets").get(dataset)(data_root), output_dir=output,
                           train_split=train_split, val_split=val_split, preset=preset,
                           overrides=key_values(set_, "--set"), resume=resume, device=device, seed=seed, limit=limit,
                           progress=progress, stage=stage)
    checkpoint = trainers.get(model)(request)
    out.print(f"checkpoint: {checkpoint}", highlight=False, markup=False)
