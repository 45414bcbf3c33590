"""The resumable ``accelerate`` training loop shared by the trainable baselines.

A model module supplies its data loaders, its optimizer, a loss function and a way to write a
loadable model directory; this module owns everything else that must behave the same for every
model: the run directory (``recipe.json`` that a resume must match, ``loss_log.jsonl``,
``checkpoints/step-XXXXXXXX/`` with model + accelerate state + trainer state, ``best/``,
``final/``), AdamW/Adam, constant or cosine schedules with warm-up, gradient accumulation,
clipping, evaluation with early stopping, and exact resume.

Resume is exact: batches come from a per-epoch permutation seeded by (seed, epoch), dropout is
re-seeded from (seed, epoch, batch, rank) before every micro-batch, and optimizer / scheduler /
trainer state are restored — so a run resumed from a mid-way checkpoint ends with the same weights
as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import torch

from rrg_bench.hashing import derive_seed

from rrg_bench.errors import UsageError


class LoopSettings(Protocol):
    """The recipe fields the loop reads (a model's pydantic recipe provides them)."""

    optimizer: str
    lr: float
    weight_decay: float
    adam_beta1: float
    adam_beta2: float
    schedule: str
    warmup_ratio: float
    grad_accum: int
    grad_clip: float | None
    epochs: int
    max_batches_per_epoch: int | None
    max_steps: int | None
    eval_every_steps: int
    patience: int | None
    min_delta: float
    save_every_steps: int
    keep_checkpoints: int


class EpochSampler(torch.utils.data.Sampler[int]):
    """A fixed permutation per epoch, seeded by (seed, epoch): resumable without sampler state."""

    def __init__(self, n: int, seed: int, shuffle: bool) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


@dataclass
class TrainerState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_eval_step: int | None = None
    stopped_early: bool = False
    finished: bool = False


def list_checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith("step-") and (p / "trainer_state.json").is_file())


class LossLog:
    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.is_file()):
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, **record: Any) -> None:
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")


def prepare_run_dir(out: Path, identity: dict[str, Any], resume: bool, accelerator) -> Path | None:
    """Check ``out`` against ``identity`` and return the checkpoint to resume from (or None).

    A resume must match the checkpointed run's identity exactly; a fresh start in a directory that
    holds checkpoints is refused unless resuming. Writes ``recipe.json`` (main process)."""
    checkpoints = list_checkpoints(out)
    resume_from = checkpoints[-1] if (resume and checkpoints) else None
    recipe_file = out / "recipe.json"
    if checkpoints and not resume:
        raise UsageError(f"{out} already holds checkpoints of a run; resume it or choose a new --output")
    if resume_from is not None and recipe_file.is_file():
        previous = json.loads(recipe_file.read_text())
        if previous != identity:
            diff = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
            raise UsageError(f"cannot resume {out}: the run differs from the checkpointed one in {diff}")
    accelerator.wait_for_everyone()  # every rank has compared before the main process rewrites the file
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        recipe_file.write_text(json.dumps(identity, indent=1, sort_keys=True))
        if resume_from is None:  # a fresh start: no log lines from an earlier, checkpoint-less attempt
            (out / "loss_log.jsonl").unlink(missing_ok=True)
    return resume_from


def make_optimizer(settings: LoopSettings, params) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=settings.lr, weight_decay=settings.weight_decay,
               betas=(settings.adam_beta1, settings.adam_beta2))


def make_scheduler(settings: LoopSettings, optimizer, total_steps: int):
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    warmup = int(round(settings.warmup_ratio * total_steps))
    if settings.schedule == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    return get_constant_schedule_with_warmup(optimizer, warmup)


def trained_checkpoint(out: Path) -> Path:
    """The checkpoint a finished run hands back: ``best/`` (lowest validation loss) when the run
    validated, else ``final/`` — both written by ``run_training``."""
    return out / "best" if (out / "best").is_dir() else out / "final"


def save_model_dir(directory: Path, write: Callable[[Path], None], info: dict[str, Any], info_name: str) -> None:
    """Write a loadable model directory atomically: ``write(tmp)`` then the training-info file."""
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    write(tmp)
    (tmp / info_name).write_text(json.dumps(info, indent=1, sort_keys=True))
    if directory.exists():
        shutil.rmtree(directory)
    tmp.replace(directory)


def _token_weight(batch: dict[str, Any]) -> torch.Tensor:
    return batch["attention_mask"].sum()


def run_training(
    *,
    accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader,
    val_loader,
    settings: LoopSettings,
    out: Path,
    seed: int,
    resume_from: Path | None,
    progress: bool,
    compute_loss: Callable[[torch.nn.Module, Any, dict[str, Any]], torch.Tensor],
    write_model: Callable[[Any, Path], None],
    training_info: Callable[[str, TrainerState], dict[str, Any]],
    info_name: str,
    start_fields: dict[str, Any] | None = None,
    eval_weight: Callable[[dict[str, Any]], torch.Tensor] = _token_weight,
) -> TrainerState:
    """Train to the end of the schedule (or early stop), saving checkpoints, ``best/`` and ``final/``.

    ``compute_loss(model, unwrapped, batch)`` returns the mean loss of a batch (``model`` is the
    prepared/wrapped one, ``unwrapped`` the plain module); ``write_model(unwrapped, directory)``
    writes a loadable model into a fresh directory (main process only); validation loss is the
    ``eval_weight``-weighted mean over the validation set (default: attended tokens)."""
    main = accelerator.is_main_process
    device = accelerator.device
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    cap = settings.max_batches_per_epoch
    per_process_cap = math.ceil(cap / accelerator.num_processes) if cap else None
    batches_per_epoch = min(len(train_loader), per_process_cap) if per_process_cap else len(train_loader)
    steps_per_epoch = math.ceil(batches_per_epoch / settings.grad_accum)
    total_steps = steps_per_epoch * settings.epochs
    if settings.max_steps is not None:
        total_steps = min(total_steps, settings.max_steps)
    scheduler = make_scheduler(settings, optimizer, total_steps)
    accelerator.register_for_checkpointing(scheduler)

    state = TrainerState()
    log = LossLog(out / "loss_log.jsonl", main)
    if resume_from is not None:
        accelerator.load_state(str(resume_from / "accelerate"))
        state = TrainerState(**json.loads((resume_from / "trainer_state.json").read_text()))
        log.truncate_after(state.step)
        log.write(event="resume", step=state.step, checkpoint=resume_from.name)
    else:
        log.write(event="start", step=0, total_steps=total_steps, **(start_fields or {}))

    unwrapped = accelerator.unwrap_model(model)

    def evaluate() -> float | None:
        if val_loader is None:
            return None
        model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for batch in val_loader:
                loss = compute_loss(model, unwrapped, batch)
                weight = eval_weight(batch)
                total += torch.stack([loss.double() * weight, torch.as_tensor(weight, device=device).double()])
        total = accelerator.reduce(total, reduction="sum")
        model.train()
        return float(total[0] / total[1].clamp_min(1))

    def save_model(directory: Path, kind: str) -> None:
        save_model_dir(directory, lambda tmp: write_model(unwrapped, tmp), training_info(kind, state), info_name)

    def save_checkpoint() -> None:
        accelerator.wait_for_everyone()
        final = out / "checkpoints" / f"step-{state.step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        if main and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp / "accelerate"))
        if main:
            save_model(tmp / "model", "checkpoint")
            (tmp / "trainer_state.json").write_text(json.dumps(asdict(state), indent=1))
            if final.exists():
                shutil.rmtree(final)
            tmp.replace(final)
            for old in list_checkpoints(out)[: -settings.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def after_eval(val_loss: float | None) -> None:
        if val_loss is None:
            return
        improved = state.best_val_loss is None or val_loss < state.best_val_loss - settings.min_delta
        if improved:
            state.best_val_loss, state.best_step, state.bad_evals = val_loss, state.step, 0
            if main:
                save_model(out / "best", "best")
        else:
            state.bad_evals += 1
            if settings.patience is not None and state.bad_evals >= settings.patience:
                state.stopped_early = True
        state.last_eval_step = state.step
        log.write(event="eval", step=state.step, val_loss=val_loss, best_val_loss=state.best_val_loss)

    model.train()
    rank = accelerator.process_index
    while not (state.finished or state.stopped_early) and state.epoch < settings.epochs and state.step < total_steps:
        epoch = state.epoch
        epoch_started = time.perf_counter()
        train_loader.set_epoch(epoch)
        start = state.batch_in_epoch
        loader = accelerator.skip_first_batches(train_loader, start) if start else train_loader
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=batches_per_epoch, initial=start, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch")
        micro_losses = []
        for index, batch in enumerate(loader, start=start):
            if index >= batches_per_epoch:
                break
            group_start = index - index % settings.grad_accum
            group_size = min(settings.grad_accum, batches_per_epoch - group_start)
            last_micro = index == group_start + group_size - 1
            torch.manual_seed(derive_seed(seed, "dropout", epoch, index, rank))
            with nullcontext() if last_micro else accelerator.no_sync(model):
                loss = compute_loss(model, unwrapped, batch)
                accelerator.backward(loss / group_size)
            micro_losses.append(loss.detach())
            if bar is not None:
                bar.update(1)
            if not last_micro:
                continue
            if settings.grad_clip is not None:
                accelerator.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_loss = accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean").item()
            micro_losses = []
            state.step += 1
            state.batch_in_epoch = index + 1
            log.write(event="step", step=state.step, epoch=epoch, loss=step_loss, lr=scheduler.get_last_lr()[0])
            if bar is not None:
                bar.set_postfix(loss=f"{step_loss:.3f}", step=state.step)
            if settings.eval_every_steps and state.step % settings.eval_every_steps == 0:
                after_eval(evaluate())
            at_end = state.step >= total_steps or state.stopped_early
            if settings.save_every_steps and state.step % settings.save_every_steps == 0 and not at_end:
                save_checkpoint()
            if at_end:
                break
        if bar is not None:
            bar.close()
        epoch_done = state.batch_in_epoch >= batches_per_epoch
        if epoch_done:
            state.epoch, state.batch_in_epoch = epoch + 1, 0
        log.write(
            event="epoch", step=state.step, epoch=epoch, seconds=time.perf_counter() - epoch_started,
            complete=epoch_done,
        )
        if epoch_done and not settings.eval_every_steps:
            after_eval(evaluate())
        if state.step >= total_steps or state.epoch >= settings.epochs:
            state.finished = True
        if epoch_done and not settings.save_every_steps and not (state.finished or state.stopped_early):
            save_checkpoint()

    state.finished = True
    if val_loader is not None and state.last_eval_step != state.step:
        after_eval(evaluate())
    save_checkpoint()
    if main:
        save_model(out / "final", "final")
        log.write(event="end", step=state.step, best_val_loss=state.best_val_loss, stopped_early=state.stopped_early)
    accelerator.wait_for_everyone()
    return state
