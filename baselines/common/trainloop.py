"""The resumable ``accelerate`` training loop shared by the trainable baselines.

A model module supplies its data loaders, its optimizer, a loss function and a way to write a
loadable model directory; this module owns everything else that must behave the same for every
model: the run directory (``recipe.json`` that a resume must match, ``loss_log.jsonl``,
``checkpoints/step-XXXXXXXX/`` with model + accelerate state + trainer state, ``best/``,
``final/``), AdamW/Adam, constant or cosine schedules with warm-up (or a cosine that steps once per
epoch to a floor, ``cosine_epoch``), gradient accumulation, clipping, evaluation with early stopping
(``best/`` by validation loss, or by a model's own score such as validation BLEU-4), and exact resume.

Resume is exact: batches come from a per-epoch permutation seeded by (seed, epoch), dropout is
re-seeded from (seed, epoch, batch, rank) before every micro-batch, and optimizer / scheduler /
trainer state are restored — so a run resumed from a mid-way checkpoint ends with the same weights
as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from rrg_bench.errors import UsageError
from rrg_bench.hashing import derive_seed


class LoopSettings(Protocol):
    """The recipe fields the loop reads (``baselines.common.presets.LoopRecipe`` provides them). Read-only
    properties, because the loop never assigns them: a recipe may narrow a field (``optimizer`` is a
    ``Literal``) and still satisfy the protocol."""

    @property
    def optimizer(self) -> str: ...

    @property
    def lr(self) -> float: ...

    @property
    def weight_decay(self) -> float: ...

    @property
    def adam_beta1(self) -> float: ...

    @property
    def adam_beta2(self) -> float: ...

    @property
    def schedule(self) -> str: ...

    @property
    def warmup_ratio(self) -> float: ...

    @property
    def grad_accum(self) -> int: ...

    @property
    def grad_clip(self) -> float | None: ...

    @property
    def epochs(self) -> int: ...

    @property
    def max_batches_per_epoch(self) -> int | None: ...

    @property
    def max_steps(self) -> int | None: ...

    @property
    def eval_every_steps(self) -> int: ...

    @property
    def patience(self) -> int | None: ...

    @property
    def min_delta(self) -> float: ...

    @property
    def save_every_steps(self) -> int: ...

    @property
    def keep_checkpoints(self) -> int: ...


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
    #: only when the model selects by its own score (``ModelIO.score``); absent from other runs' files
    best_score: float | None = None
    best_score_step: int | None = None


_SCORE_FIELDS = ("best_score", "best_score_step")


def state_record(state: TrainerState) -> dict[str, Any]:
    """``trainer_state.json``: the score fields only when a score selected the model."""
    record = asdict(state)
    return {k: v for k, v in record.items() if k not in _SCORE_FIELDS or v is not None}


def list_checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith("step-") and (p / "trainer_state.json").is_file())


class LossLog:
    """``loss_log.jsonl``, written by the main process only; a resume drops lines after its step."""

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


def prepare_run_dir(out: Path, identity: dict[str, Any], resume: bool, accelerator: Any) -> Path | None:
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


def make_optimizer(settings: LoopSettings, params: Any) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=settings.lr, weight_decay=settings.weight_decay,
               betas=(settings.adam_beta1, settings.adam_beta2))


def epoch_cosine_factor(epoch: int, epochs: int, floor_ratio: float) -> float:
    """``CosineAnnealingLR(T_max=epochs, eta_min)`` stepped once per epoch, as a factor of the base
    rate: ``r + (1 - r)(1 + cos(π·epoch/epochs))/2`` with ``r = eta_min / lr`` (epoch counted from 0)."""
    e = min(epoch, epochs)
    return floor_ratio + (1 - floor_ratio) * (1 + math.cos(math.pi * e / max(epochs, 1))) / 2


def make_scheduler(settings: LoopSettings, optimizer: torch.optim.Optimizer, total_steps: int,
                   steps_per_epoch: int | None = None) -> Any:
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    warmup = int(round(settings.warmup_ratio * total_steps))
    if settings.schedule == "cosine_epoch":
        per_epoch = max(steps_per_epoch or total_steps, 1)
        floor_ratio = float(getattr(settings, "min_lr", 0.0)) / settings.lr

        def factor(step: int) -> float:
            ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
            return ramp * epoch_cosine_factor(step // per_epoch, settings.epochs, floor_ratio)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
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


def forward_loss(keys: tuple[str, ...]) -> Callable[[torch.nn.Module, Any, dict[str, Any]], torch.Tensor]:
    """``compute_loss`` for a model whose ``forward`` returns the loss: the batch's ``keys`` that are
    present, as keyword arguments."""

    def compute_loss(model: torch.nn.Module, unwrapped: Any, batch: dict[str, Any]) -> torch.Tensor:
        return model(**{k: batch[k] for k in keys if k in batch})

    return compute_loss


def _token_weight(batch: dict[str, Any]) -> torch.Tensor:
    return batch["attention_mask"].sum()


@dataclass
class ModelIO:
    """How the loop computes a model's loss and writes it (what differs between models).

    ``compute_loss(model, unwrapped, batch)`` returns the mean loss of a batch (``model`` is the
    prepared/wrapped one, ``unwrapped`` the plain module); ``write_model(unwrapped, directory)``
    writes a loadable model into a fresh directory (main process only), next to ``info_name``
    holding ``training_info(kind, state)``; validation loss is the ``eval_weight``-weighted mean
    over the validation set (default: attended tokens)."""

    compute_loss: Callable[[torch.nn.Module, Any, dict[str, Any]], torch.Tensor]
    write_model: Callable[[Any, Path], None]
    training_info: Callable[[str, TrainerState], dict[str, Any]]
    info_name: str
    eval_weight: Callable[[dict[str, Any]], torch.Tensor] = _token_weight
    #: ``score(unwrapped, val_loader)`` -> a validation score, higher is better (same on every rank);
    #: when given, ``best/`` and early stopping follow it instead of the validation loss
    score: Callable[[Any, Any], float] | None = None


class _Loop:
    """One training run's moving parts, so each step of the loop is a small method."""

    def __init__(self, accelerator: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train_loader: Any,
                 val_loader: Any, settings: LoopSettings, out: Path, seed: int, io: ModelIO) -> None:
        self.accelerator, self.settings, self.out, self.seed, self.io = accelerator, settings, out, seed, io
        self.main = accelerator.is_main_process
        self.model, self.optimizer, self.train_loader = accelerator.prepare(model, optimizer, train_loader)
        self.val_loader = accelerator.prepare(val_loader) if val_loader is not None else None
        cap = settings.max_batches_per_epoch
        per_process_cap = math.ceil(cap / accelerator.num_processes) if cap else None
        n = len(self.train_loader)
        self.batches_per_epoch = min(n, per_process_cap) if per_process_cap else n
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / settings.grad_accum)
        self.total_steps = self.steps_per_epoch * settings.epochs
        if settings.max_steps is not None:
            self.total_steps = min(self.total_steps, settings.max_steps)
        self.scheduler = make_scheduler(settings, self.optimizer, self.total_steps, self.steps_per_epoch)
        accelerator.register_for_checkpointing(self.scheduler)
        self.state = TrainerState()
        self.log = LossLog(out / "loss_log.jsonl", self.main)
        self.unwrapped = accelerator.unwrap_model(self.model)

    def begin(self, resume_from: Path | None, start_fields: dict[str, Any] | None) -> None:
        if resume_from is not None:
            self.accelerator.load_state(str(resume_from / "accelerate"))
            self.state = TrainerState(**json.loads((resume_from / "trainer_state.json").read_text()))
            self.log.truncate_after(self.state.step)
            self.log.write(event="resume", step=self.state.step, checkpoint=resume_from.name)
        else:
            self.log.write(event="start", step=0, total_steps=self.total_steps, **(start_fields or {}))

    def evaluate(self) -> float | None:
        if self.val_loader is None:
            return None
        device = self.accelerator.device
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for batch in self.val_loader:
                loss = self.io.compute_loss(self.model, self.unwrapped, batch)
                weight = self.io.eval_weight(batch)
                total += torch.stack([loss.double() * weight, torch.as_tensor(weight, device=device).double()])
        total = self.accelerator.reduce(total, reduction="sum")
        self.model.train()
        return float(total[0] / total[1].clamp_min(1))

    def mid_epoch_eval_due(self) -> bool:
        """``evals_per_epoch`` > 1 (a recipe field some models have): evaluate after each of that many
        equal parts of an epoch (the last part's evaluation is the end-of-epoch one)."""
        parts = int(getattr(self.settings, "evals_per_epoch", 1) or 1)
        if parts <= 1 or self.settings.eval_every_steps:
            return False
        in_epoch = self.state.step - self.state.epoch * self.steps_per_epoch
        return in_epoch in {round(k * self.steps_per_epoch / parts) for k in range(1, parts)}

    def save_model(self, directory: Path, kind: str) -> None:
        info = self.io.training_info(kind, self.state)
        save_model_dir(directory, lambda tmp: self.io.write_model(self.unwrapped, tmp), info, self.io.info_name)

    def save_checkpoint(self) -> None:
        accelerator, main = self.accelerator, self.main
        accelerator.wait_for_everyone()
        final = self.out / "checkpoints" / f"step-{self.state.step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        if main and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp / "accelerate"))
        if main:
            self.save_model(tmp / "model", "checkpoint")
            (tmp / "trainer_state.json").write_text(json.dumps(state_record(self.state), indent=1))
            if final.exists():
                shutil.rmtree(final)
            tmp.replace(final)
            for old in list_checkpoints(self.out)[: -self.settings.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def after_eval(self, val_loss: float | None) -> None:
        if val_loss is None:
            return
        state, settings = self.state, self.settings
        score = self.io.score(self.unwrapped, self.val_loader) if self.io.score is not None else None
        if score is not None:
            improved = state.best_score is None or score > state.best_score + settings.min_delta
        else:
            improved = state.best_val_loss is None or val_loss < state.best_val_loss - settings.min_delta
        if state.best_val_loss is None or val_loss < state.best_val_loss - settings.min_delta:
            state.best_val_loss = val_loss
            if score is None:
                state.best_step = state.step
        if improved:
            state.bad_evals = 0
            if score is not None:
                state.best_score, state.best_score_step, state.best_step = score, state.step, state.step
            if self.main:
                self.save_model(self.out / "best", "best")
        else:
            state.bad_evals += 1
            if settings.patience is not None and state.bad_evals >= settings.patience:
                state.stopped_early = True
        state.last_eval_step = state.step
        scored = {"val_score": score, "best_score": state.best_score} if score is not None else {}
        self.log.write(event="eval", step=state.step, val_loss=val_loss, best_val_loss=state.best_val_loss, **scored)

    def optimizer_step(self, micro_losses: list[torch.Tensor], epoch: int, index: int) -> float:
        """Clip, step, schedule; one log line; returns the step's loss (mean over micro-batches and ranks)."""
        if self.settings.grad_clip is not None:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        step_loss = self.accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean").item()
        self.state.step += 1
        self.state.batch_in_epoch = index + 1
        self.log.write(event="step", step=self.state.step, epoch=epoch, loss=step_loss,
                       lr=self.scheduler.get_last_lr()[0])
        return step_loss

    def after_step(self) -> bool:
        """Step-based evaluation and checkpoints; True when the run has reached its end."""
        settings, state = self.settings, self.state
        if (settings.eval_every_steps and state.step % settings.eval_every_steps == 0) or self.mid_epoch_eval_due():
            self.after_eval(self.evaluate())
        at_end = state.step >= self.total_steps or state.stopped_early
        if settings.save_every_steps and state.step % settings.save_every_steps == 0 and not at_end:
            self.save_checkpoint()
        return at_end

    def train_epoch(self, epoch: int, bar: Any) -> None:
        settings, accelerator = self.settings, self.accelerator
        start = self.state.batch_in_epoch
        loader = accelerator.skip_first_batches(self.train_loader, start) if start else self.train_loader
        micro_losses: list[torch.Tensor] = []
        for index, batch in enumerate(loader, start=start):
            if index >= self.batches_per_epoch:
                break
            group_start = index - index % settings.grad_accum
            group_size = min(settings.grad_accum, self.batches_per_epoch - group_start)
            last_micro = index == group_start + group_size - 1
            torch.manual_seed(derive_seed(self.seed, "dropout", epoch, index, accelerator.process_index))
            with nullcontext() if last_micro else accelerator.no_sync(self.model):
                loss = self.io.compute_loss(self.model, self.unwrapped, batch)
                accelerator.backward(loss / group_size)
            micro_losses.append(loss.detach())
            if bar is not None:
                bar.update(1)
            if not last_micro:
                continue
            step_loss = self.optimizer_step(micro_losses, epoch, index)
            micro_losses = []
            if bar is not None:
                bar.set_postfix(loss=f"{step_loss:.3f}", step=self.state.step)
            if self.after_step():
                break

    def run_epoch(self, progress: bool) -> None:
        settings, state = self.settings, self.state
        epoch = state.epoch
        epoch_started = time.perf_counter()
        self.train_loader.set_epoch(epoch)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.batches_per_epoch, initial=state.batch_in_epoch,
                       desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch")
        self.train_epoch(epoch, bar)
        if bar is not None:
            bar.close()
        epoch_done = state.batch_in_epoch >= self.batches_per_epoch
        if epoch_done:
            state.epoch, state.batch_in_epoch = epoch + 1, 0
        self.log.write(event="epoch", step=state.step, epoch=epoch, seconds=time.perf_counter() - epoch_started,
                       complete=epoch_done)
        if epoch_done and not settings.eval_every_steps:
            self.after_eval(self.evaluate())
        if state.step >= self.total_steps or state.epoch >= settings.epochs:
            state.finished = True
        if epoch_done and not settings.save_every_steps and not (state.finished or state.stopped_early):
            self.save_checkpoint()

    def running(self) -> bool:
        state = self.state
        return (not (state.finished or state.stopped_early) and state.epoch < self.settings.epochs
                and state.step < self.total_steps)

    def finish(self) -> None:
        state = self.state
        state.finished = True
        if self.val_loader is not None and state.last_eval_step != state.step:
            self.after_eval(self.evaluate())
        self.save_checkpoint()
        if self.main:
            self.save_model(self.out / "final", "final")
            self.log.write(event="end", step=state.step, best_val_loss=state.best_val_loss,
                           stopped_early=state.stopped_early)
        self.accelerator.wait_for_everyone()


def run_training(*, accelerator: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train_loader: Any,
                 val_loader: Any, settings: LoopSettings, out: Path, seed: int, resume_from: Path | None,
                 progress: bool, io: ModelIO, start_fields: dict[str, Any] | None = None) -> TrainerState:
    """Train to the end of the schedule (or early stop), saving checkpoints, ``best/`` and ``final/``."""
    loop = _Loop(accelerator, model, optimizer, train_loader, val_loader, settings, out, seed, io)
    loop.begin(resume_from, start_fields)
    loop.model.train()
    while loop.running():
        loop.run_epoch(progress)
    loop.finish()
    return loop.state
