"""`Trainer`: the STEP 1..6 pipeline (data, tokenizer, loaders, model, a tokenization check,
training), the training loop, validation and history, on a run `prepare_run` resolved.

Where the run is (epoch, step, random state) and its `last.pt` are `RunState`'s; the loaders
are `make_run_loaders`'. Everything a run writes goes to `checkpoint_dir/<run>/` through
`mmlib.checkpoint`.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from mmlib import checkpoint as ckpt
from mmlib.config import Config
from mmlib.data.dataset import set_loader_epoch
from mmlib.files import WriteError, fault_point
from mmlib.model.losses import LossWeights, compute_losses, same_caption_mask
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import REPORTED, TrainingStep, autocast_for, reported
from mmlib.progress import progress_bar
from mmlib.sizing.batch_size import out_of_memory_message
from mmlib.training.build import (
    build_run,
    clear_earlier_run,
    continue_schedule,
    save_epoch_checkpoint,
    write_run_files,
)
from mmlib.training.run_state import (
    HISTORY_COLUMNS,
    STEP_COLUMNS,
    WALL_CLOCK_COLUMNS,
    EpochPosition,
    RunState,
)
from mmlib.training.setup import PreparedRun, TrainingError, prepare_run, run_config

__all__ = [
    "HISTORY_COLUMNS",
    "MAX_BAD_STEPS_IN_A_ROW",
    "STEP_COLUMNS",
    "WALL_CLOCK_COLUMNS",
    "Callback",
    "Trainer",
    "TrainingError",
    "evaluate_losses",
    "run_config",
]

MAX_BAD_STEPS_IN_A_ROW = 5


class Callback:
    """Hooks a notebook or test can implement; the trainer calls them on rank 0."""

    def on_step_end(self, trainer: Trainer, step: int, losses: dict[str, float] | None) -> None:
        """After each optimizer step; `losses` is set on logged steps only (no sync otherwise)."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        """After validation, with the epoch's history row."""


class Trainer:
    """Train `MultimodalModel` on the configured data into `checkpoint_dir/<run>/`.

    `Trainer(prepare_run(config, resume)).fit()` prints STEP 1..6 as it reaches them, then per
    epoch the train and val losses (Img / Cap / Align), "Best model saved", the epoch time and
    the learning rate. `Trainer(config, resume=...)` calls `prepare_run` itself. `resume` takes
    a run folder, a run name or "latest" and continues from its `last.pt` (or, when the run
    stopped before its first `last.pt`, starts it again from the beginning); `config` should
    then be the run's own (`run_config`), changed only where you mean it (for example more
    epochs: the cosine schedule is then re-planned over them).
    """

    def __init__(
        self,
        run: PreparedRun | Config,
        *,
        resume: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
        log: Callable[[str], None] = print,
        progress: bool = True,
    ) -> None:
        if isinstance(run, Config):
            run = prepare_run(run, resume)
        elif resume is not None:
            raise TypeError("resume goes to prepare_run, not to Trainer with a PreparedRun")
        self.run, self.config, self.run_dir, self.device = run, run.config, run.run_dir, run.device
        self.world_size, self.rank, self.is_main = run.world_size, run.rank, run.is_main
        self.resume_state = run.resume_state
        self.callbacks = list(callbacks) if self.is_main else []
        self.log = log if self.is_main else _silent
        self.progress = progress and self.is_main
        self.precision = self.config.resolve_precision(self.device)
        if self.precision == "fp16" and self.config.precision != "fp16":  # bf16: not native
            self.log(
                "precision: this GPU has no native bf16; training in fp16 with loss scaling "
                "(--set precision=fp32 trains in fp32)"
            )
        self.state = RunState()
        self._stop_requested = False

    # ------------------------------------------------------------------ public

    @property
    def epoch(self) -> int:
        """Epochs finished (`state.epoch`)."""
        return self.state.epoch

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (`state.global_step`)."""
        return self.state.global_step

    @property
    def history(self) -> list[dict[str, float]]:
        """One row per epoch finished (`state.history`)."""
        return self.state.history

    @property
    def steps(self) -> list[dict[str, float]]:
        """One row per logged optimizer step (`state.steps`)."""
        return self.state.steps

    def request_stop(self) -> None:
        """Stop at the next optimizer step, save `last.pt` and return from `fit` (as Ctrl-C)."""
        self._stop_requested = True

    @property
    def stopped(self) -> bool:
        """Whether a stop request (Ctrl-C, SIGTERM, `request_stop`) ended training before its
        last epoch: the run is unfinished and continues with `--resume`."""
        return self._stop_requested and self.epoch < self.config.num_epochs

    def fit(self) -> list[dict[str, float]]:
        """Run STEP 1..6; return the history (one dict per epoch)."""
        self.prepare()
        with _stop_on_signals(self.request_stop):
            try:
                self._train()
            except WriteError as error:
                raise TrainingError(
                    f"{error}; then continue the run with --resume {self.run_dir}"
                ) from error
        return self.history

    # ------------------------------------------------------------------ STEP 1..5

    def prepare(self) -> None:
        """STEP 1..5 (`build_run`): data, tokenizer, loaders, model and optimizer; then the
        resumed state, or a fresh run's folder cleared of an earlier run's outputs."""
        if hasattr(self, "model"):
            return
        parts = build_run(self.run, self.precision, self.log, self.progress)
        self.tokenizer, self.test_images = parts.tokenizer, parts.test_images
        self.train_set, self.val_set, self.train_eval_set = parts.loaders[:3]
        self.train_loader, self.val_loader, self.train_eval_loader = parts.loaders[3:]
        self.model, self.forward, self.optimizer = parts.model, parts.forward, parts.optimizer
        self.scheduler, self.scaler = parts.scheduler, parts.scaler
        self.total_steps = parts.total_steps
        self.weights = LossWeights.from_config(self.config)
        self.step = self.make_step(self.scaler, self.scheduler)
        self.state, self._bad_in_a_row = RunState(), 0
        # Everything loads before anything is written or removed: a fresh run refused for its
        # data or model leaves an earlier run under its name as it was.
        if self.resume_state is not None:
            self._restore(self.resume_state)
        elif self.is_main:
            clear_earlier_run(self.run, self.log)
        if self.is_main:
            write_run_files(self.run, self.tokenizer)

    def make_step(
        self,
        scaler: torch.amp.GradScaler | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> TrainingStep:
        """The training step of this trainer's model, optimizer, precision, processes and fast
        path, with `scaler` and `scheduler` (training: the trainer's own; `lr_find`: a fresh
        scaler and none, so that it leaves the trainer's as they were)."""
        return TrainingStep(
            self.model,
            self.optimizer,
            self.config,
            self.precision,
            forward=self.forward,
            scaler=scaler,
            scheduler=scheduler,
            world_size=self.world_size,
            fast=self.config.resolve_fast_path(self.device),
        )

    # ------------------------------------------------------------------ STEP 6

    def _train(self) -> None:
        log = self.log
        log("\nSTEP 6: Starting training...")
        self._last_saved = time.monotonic()
        while self.epoch < self.config.num_epochs and not self._stop_requested:
            started = time.perf_counter()
            try:
                position = self._run_epoch()
            except torch.OutOfMemoryError:
                self._write_history()
                raise TrainingError(out_of_memory_message(self.config, self.device)) from None
            if self._stop_requested and position is not None:
                self._save_last(position)
                log(
                    f"Stopped during epoch {self.epoch + 1}: saved {self.run_dir / ckpt.LAST_FILE}"
                    f"; continue with --resume {self.run_dir}"
                )
                return
            row = self._finish_epoch(time.perf_counter() - started)
            for callback in self.callbacks:
                callback.on_epoch_end(self, row)
            if self.state.patience_ran_out(self.config.early_stopping_patience):
                patience = self.state.epochs_without_improvement
                log(f"Early stopping: no better val loss for {patience} epochs")
                break

    def _run_epoch(self) -> EpochPosition | None:
        """Train one epoch; returns the position if a stop was requested part-way.

        The loader's batches are taken in groups of `grad_accum_steps`, one optimizer step per
        group; when the epoch's batches do not divide evenly, the last group is smaller and
        still steps (on the mean gradient of the batches it holds), so no gradient crosses into
        the next epoch and `last.pt` holds all of it.
        """
        config, state = self.config, self.state
        set_loader_epoch(self.train_loader, state.epoch)
        self.model.train()
        done, sums, samples, skipped = state.start_epoch(self.device)
        count = len(self.train_loader)
        batches = itertools.islice(iter(self.train_loader), done, None)
        with progress_bar(
            total=count,
            initial=done,
            desc=f"Epoch {state.epoch + 1}/{config.num_epochs}",
            unit="batch",
            enabled=self.progress,
            leave=False,
        ) as bar:
            while done < count:
                group = [
                    (batch["images"], batch["tokens"])
                    for batch in itertools.islice(
                        batches, min(config.grad_accum_steps, count - done)
                    )
                ]
                result = self.step(group)
                state.global_step += 1
                done += len(group)
                bar.update(len(group))
                sums += result.sums
                samples += result.samples
                skipped += not result.finite
                self._count_non_finite(result.finite)
                logged = self._log_step(result.means, result.grad_norm, bar)
                for callback in self.callbacks:
                    callback.on_step_end(self, state.global_step, logged)
                here = (state.epoch, done, sums.cpu(), samples, skipped, self.run.batch_size)
                self._stop_requested = _any(self._stop_requested, self.device, self.world_size)
                if self._stop_requested:
                    return EpochPosition(*here)
                if done < count and _due(self._last_saved, config.save_every_minutes):
                    self._save_last(EpochPosition(*here))
                fault_point(f"step:{state.global_step}")
        self._train_sums, self._train_samples, self._skipped = sums, samples, skipped
        return None

    def _count_non_finite(self, finite: bool) -> None:
        """Warn about a skipped step; stop the run after `MAX_BAD_STEPS_IN_A_ROW` in a row."""
        self._bad_in_a_row = 0 if finite else self._bad_in_a_row + 1
        if finite:
            return
        warnings.warn(
            f"step {self.global_step}: non-finite loss or gradient; step skipped", stacklevel=3
        )
        if self._bad_in_a_row >= MAX_BAD_STEPS_IN_A_ROW:
            self._write_history()
            raise TrainingError(
                f"{self._bad_in_a_row} non-finite steps in a row at step {self.global_step}: "
                f"lower the learning rate (now {self.config.learning_rate:g}) or use fp32; "
                f"the history so far is in {self.run_dir}"
            )

    def _log_step(self, figures: Tensor, grad_norm: Tensor, bar: tqdm) -> dict[str, float] | None:
        if self.global_step % self.config.log_interval:
            return None
        values = dict(zip(REPORTED, figures.tolist(), strict=True))
        lr = cast(float, self.scheduler.get_last_lr()[0])  # config lr: a float
        self.state.record_step(values, lr, float(grad_norm))
        bar.set_postfix(loss=f"{values['total']:.4f}")
        return values

    def validate(self) -> dict[str, float]:
        """Average val losses (each sample counted once), in eval mode."""
        return self.evaluate(self.val_loader)

    def validate_train(self) -> dict[str, float]:
        """Average losses, in eval mode, on the fixed training subset `train_eval_set` (as large
        as the validation set, first captions, no augmentation): the train loss to compare with
        val, rather than the running average of an epoch during which the model improved."""
        return self.evaluate(self.train_eval_loader)

    def evaluate(self, loader: DataLoader[Any]) -> dict[str, float]:
        """`evaluate_losses` of this trainer's model on `loader`: the code path of `validate`."""
        return evaluate_losses(
            self.model, loader, self.weights, self.precision, self.device, self.world_size
        )

    def _finish_epoch(self, seconds: float) -> dict[str, float]:
        means = (self._train_sums / max(self._train_samples, 1)).tolist()
        val, train_eval = self.validate(), self.validate_train()
        figures = {
            **{f"train_{k}": v for k, v in zip(REPORTED, means, strict=True)},
            **{f"val_{k}": v for k, v in val.items()},
            **{f"train_eval_{k}": v for k, v in train_eval.items()},
            "lr": self.scheduler.get_last_lr()[0],
            "epoch_time_s": seconds,
            "skipped_steps": self._skipped,
        }
        improved = self.state.record_epoch(figures, val["total"])
        row = self.history[-1]
        for line in _epoch_report(self.epoch, row):
            self.log(line)
        if improved:
            if self.is_main:
                ckpt.save_checkpoint(self.model.state_dict(), self.run_dir / ckpt.BEST_FILE)
            self.log(f"✓ Best model saved: {self.run_dir / ckpt.BEST_FILE}")
        self.log(f"Epoch time: {seconds:.1f}s | LR: {row['lr']:.2e}")
        if self.is_main:
            self._write_history()
            self._save_last(None)
            save_epoch_checkpoint(self.run, self.model, self.epoch)
        return row

    # ------------------------------------------------------------------ files

    def _write_history(self) -> None:
        if self.is_main:
            self.state.write_history(self.run_dir)

    def _parts(self) -> dict[str, Any]:
        """What `last.pt` holds the state of, by its entry's name."""
        return {"optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def _save_last(self, position: EpochPosition | None) -> None:
        if not self.is_main:
            return
        parts = {"model": self.model, **self._parts()}
        self.state.save(self.run_dir / ckpt.LAST_FILE, parts, self.total_steps, position)
        self._last_saved = time.monotonic()
        self._write_history()

    def _restore(self, saved: dict[str, Any]) -> None:
        source = self.run_dir / ckpt.LAST_FILE
        batch_size = self.run.batch_size  # a saved position's was checked by prepare_run
        self.state = RunState.load(saved, source, self.model, self._parts(), batch_size)
        saved_total, epochs = saved.get("total_steps"), self.config.num_epochs
        continue_schedule(self.scheduler, self.total_steps, saved_total, epochs, self.log)
        self.log(f"Resumed {self.run_dir} at epoch {self.epoch + 1}, step {self.global_step}")


@torch.no_grad()
def evaluate_losses(
    model: MultimodalModel,
    loader: DataLoader[Any],
    weights: LossWeights,
    precision: str,
    device: torch.device,
    world_size: int = 1,
) -> dict[str, float]:
    """Average losses over `loader` (this process's share; summed over `world_size` processes),
    in eval mode (the model is left in train mode), for any loader of whole batches."""
    model.eval()
    sums = torch.zeros(len(REPORTED), device=device)
    samples = 0
    for batch in loader:
        images = batch["images"].to(device, non_blocking=True)
        tokens = batch["tokens"].to(device, non_blocking=True)
        same_caption = same_caption_mask(tokens)
        with autocast_for(device.type, precision):
            output = model(images, tokens)
            losses = compute_losses(output, images, tokens, weights, same_caption)
        sums += reported(losses, same_caption) * len(images)
        samples += len(images)
    model.train()
    totals = torch.cat([sums, torch.tensor([float(samples)], device=device)])
    if world_size > 1:
        dist.all_reduce(totals)
    means = totals[:-1] / max(float(totals[-1]), 1.0)
    return dict(zip(REPORTED, means.tolist(), strict=True))


def _epoch_report(epoch: int, row: dict[str, float]) -> list[str]:
    """The lines an epoch's history row prints: train, val and train (eval mode) losses."""
    lines = [
        f"Epoch {epoch} {split.capitalize()}:\n"
        f"  Avg Loss: {row[f'{split}_total']:.4f} | Img: {row[f'{split}_image']:.4f} | "
        f"Cap: {row[f'{split}_caption']:.4f} | Align: {row[f'{split}_alignment']:.4f} "
        f"(chance {row[f'{split}_alignment_chance']:.4f})"
        for split in ("train", "val")
    ]
    lines.append(
        f"  Train (eval mode) Avg Loss: {row['train_eval_total']:.4f} | "
        f"Img: {row['train_eval_image']:.4f} | Cap: {row['train_eval_caption']:.4f} | "
        f"Align: {row['train_eval_alignment']:.4f} "
        f"(chance {row['train_eval_alignment_chance']:.4f})"
    )
    return lines


def _due(last_saved: float, minutes: float) -> bool:
    """Whether `minutes` (`config.save_every_minutes`; 0: never) have passed since `last.pt`
    was last written, at `last_saved` (`time.monotonic`)."""
    return minutes > 0 and time.monotonic() - last_saved >= minutes * 60


def _any(flag: bool, device: torch.device, world_size: int) -> bool:
    """Whether `flag` is set on any of the `world_size` processes (a stop request: all stop at
    the same step)."""
    if world_size == 1:
        return flag
    tensor = torch.tensor([float(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def _silent(_line: str) -> None:
    """The log of processes other than rank 0."""


class _stop_on_signals(AbstractContextManager["_stop_on_signals"]):
    """While active (main thread only), SIGINT and SIGTERM call `stop` instead of raising."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _stop_on_signals:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, lambda *_: self.stop())
        return self

    def __exit__(self, *_exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
