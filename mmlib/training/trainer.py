"""`Trainer`: the STEP 1..6 pipeline (data, tokenizer, loaders, model, a tokenization check,
training), the training loop, validation, resume, history.

Everything a run writes goes to `checkpoint_dir/<run>/` through `mmlib.checkpoint`.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from mmlib import checkpoint as ckpt
from mmlib.config import AUTO, Config, ConfigError, get_device
from mmlib.data.dataset import CaptionDataset, DeviceLoader, make_loader, set_loader_epoch
from mmlib.data.images import build_image_cache
from mmlib.data.sources import SplitData, load_split
from mmlib.data.tokenizer import WordTokenizer
from mmlib.files import (
    WriteError,
    atomic_write_text,
    check_writable,
    fault_point,
    remove_temporaries,
)
from mmlib.model.losses import LossWeights, compute_losses, same_caption_mask
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import REPORTED, TrainingStep, autocast_for, make_optimizer, reported
from mmlib.progress import progress_bar
from mmlib.sizing.batch_size import check_memory_fits, out_of_memory_message, resolve_batch_size

# Each split's loss components, then its alignment loss at chance level (the exact value for
# the epoch's batches: `mmlib.model.losses.alignment_chance`).
HISTORY_COLUMNS = (
    "epoch",
    *(f"train_{c}" for c in REPORTED),
    *(f"val_{c}" for c in REPORTED),
    *(f"train_eval_{c}" for c in REPORTED),
    "lr",
    "epoch_time_s",
    "skipped_steps",
)
STEP_COLUMNS = ("step", "epoch", *REPORTED, "lr", "grad_norm")
WALL_CLOCK_COLUMNS = ("epoch_time_s",)
MAX_BAD_STEPS_IN_A_ROW = 5


class TrainingError(RuntimeError):
    """Training cannot go on (for example, the loss keeps being non-finite)."""


class Callback:
    """Hooks a notebook or test can implement; the trainer calls them on rank 0."""

    def on_step_end(self, trainer: Trainer, step: int, losses: dict[str, float] | None) -> None:
        """After each optimizer step; `losses` is set on logged steps only (no sync otherwise)."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        """After validation, with the epoch's history row."""


@dataclass
class _EpochPosition:
    """Where an interrupted epoch stopped, so a resume continues from the same batch."""

    epoch: int
    batches_done: int
    sums: Tensor
    samples: int
    skipped: int
    # The global batch size the batches were counted in: one with any number of processes or
    # accumulation steps (process r reads positions r, r + n, ... of the same order).
    batch_size: int


class Trainer:
    """Train `MultimodalModel` on the configured data into `checkpoint_dir/<run>/`.

    `Trainer(config).fit()` prints STEP 1..6 as it reaches them, then per epoch the train and val
    losses (Img / Cap / Align), "Best model saved", the epoch time and the learning rate.
    `resume` takes a run folder, a run name or "latest" and continues from its `last.pt` (or,
    when the run stopped before its first `last.pt`, starts it again from the beginning);
    `config` should then be the run's own (`run_config`), changed only where you mean it
    (for example more epochs: the cosine schedule is then re-planned over them).
    """

    def __init__(
        self,
        config: Config,
        *,
        resume: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
        log: Callable[[str], None] = print,
        progress: bool = True,
    ) -> None:
        self.resume_state: dict[str, Any] | None = None
        self._restart_note = ""
        if resume is not None:
            self.run_dir = ckpt.resolve_run(resume, config.checkpoint_dir)
            last = self.run_dir / ckpt.LAST_FILE
            if last.is_file():
                self.resume_state = ckpt.check_training_state(ckpt.load_checkpoint(last), last)
            else:
                self._restart_note = (
                    f"{last} was never written (the run stopped before its first save): "
                    f"starting {self.run_dir} again from the beginning with its config.json"
                )
        else:
            name = config.run_name or config.preset_name
            self.run_dir = Path(config.checkpoint_dir) / name
        self.config = config.check_consistency()
        self.world_size, self.rank, self.device = _distributed_context(get_device(config))
        if config.batch_size == AUTO:
            config = self.config = config.with_overrides({"batch_size": self._auto_batch_size()})
        check_memory_fits(config, self.device, int(config.batch_size) // self.world_size)
        if config.batch_size % self.world_size:
            raise ConfigError(
                f"batch_size={config.batch_size} is the global batch and must be divisible by "
                f"the {self.world_size} processes"
            )
        self._check_resumed_batch_size()
        self.is_main = self.rank == 0
        self.callbacks = list(callbacks) if self.is_main else []
        self.log = log if self.is_main else _silent
        self.progress = progress and self.is_main
        self.precision = config.resolve_precision(self.device)
        if self.precision == "fp16" and config.precision != "fp16":  # bf16 wanted, not native
            self.log(
                "precision: this GPU has no native bf16; training in fp16 with loss scaling "
                "(--set precision=fp32 trains in fp32)"
            )
        self.history: list[dict[str, float]] = []
        self.steps: list[dict[str, float]] = []
        self._stop_requested = False

    def _check_resumed_batch_size(self) -> None:
        """Refuse a batch size other than the one a run stopped mid-epoch with: its position
        counts batches of that size. (A position saved before it recorded the batch size was
        counted in the run's config.json's, which the resume that started it had written.)"""
        position = self.resume_state["position"] if self.resume_state else None
        if position is None:
            return
        saved = position.get("batch_size") or ckpt.load_run_config(self.run_dir).batch_size
        if saved != self.config.batch_size:
            raise TrainingError(
                f"{self.run_dir / ckpt.LAST_FILE}: the run stopped in the middle of epoch "
                f"{position['epoch'] + 1}, after {position['batches_done']} batches of {saved}; "
                f"resume it with --batch-size {saved} (not {self.config.batch_size}): the batch "
                "size can change when a run resumes at the end of an epoch"
            )

    def _auto_batch_size(self) -> int:
        """`resolve_batch_size`, the same on every process (the smallest if they differ)."""
        found = resolve_batch_size(self.config, self.device, self.world_size)
        size = torch.tensor([found], device=self.device)
        if self.world_size > 1:
            dist.all_reduce(size, op=dist.ReduceOp.MIN)
        return int(size)

    # ------------------------------------------------------------------ public

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
        """STEP 1..5: data, tokenizer, loaders, model and optimizer (or the resumed state)."""
        if hasattr(self, "model"):
            return
        torch.manual_seed(self.config.seed)
        config, log = self.config, self.log
        self._open_folders()
        log("STEP 1: Loading dataset...")
        split = load_split(config)
        log(split.source.message)
        log(f"Total captions found: {split.report.captions}")
        log(split.report.problems())

        log("\nSTEP 2: Building tokenizer...")
        self.tokenizer = self._tokenizer(split)
        log(self.tokenizer.summary())

        log("\nSTEP 3: Creating data loaders...")
        self._make_loaders(split)
        log(f"Train samples: {len(self.train_set)}")
        log(f"Val samples: {len(self.val_set)}")
        log(
            f"Batches per epoch: {len(self.train_loader)}  "
            f"({len(self.train_set)} / {config.batch_size})"
        )
        self.test_images = len(split.test)  # 0: the final figures come from validation
        log(f"Test images: {self.test_images} (held out for the final figures only)")

        log("\nSTEP 4: Building model...")
        self.model = MultimodalModel(config, len(self.tokenizer)).to(self.device)
        self.forward = DistributedDataParallel(self.model) if self.world_size > 1 else self.model
        log(f"Total parameters: {sum(p.numel() for p in self.model.parameters()):,}")
        log(self.model.summary())
        self._make_optimizer()

        log("\nSTEP 5: Testing tokenization...")
        example = split.val[0].captions[0]
        encoded = self.tokenizer.encode(example, config.max_caption_length)
        log(f"Original: {example}")
        log(f"Encoded shape: {encoded.shape}")
        log(f"Decoded: {self.tokenizer.decode(encoded)}")

        # Everything loads before anything is written or removed: a fresh run refused for its
        # data or model leaves an earlier run under its name as it was.
        if self.resume_state is not None:
            self._restore(self.resume_state)
        elif self.is_main:
            self._clear_earlier_run()
        self._write_run_files()

    def _open_folders(self) -> None:
        """Before the expensive work: check that the run folder and the image cache can be
        written, and remove what saves killed midway left in the run folder."""
        if self._restart_note:
            self.log(self._restart_note)
        if self.is_main:
            check_writable(self.run_dir, "set checkpoint_dir (or --run) to a writable folder")
            removed = remove_temporaries(self.run_dir)
            if removed:
                names = ", ".join(path.name for path in removed)
                self.log(f"Removed {len(removed)} temporary file(s) of interrupted saves: {names}")
        check_writable(self.config.cache_dir, "set cache_dir to a writable folder")

    def _clear_earlier_run(self) -> None:
        removed = ckpt.clear_run_outputs(self.run_dir)
        if removed:
            self.log(
                f"{self.run_dir} held an earlier run: a fresh run replaces its "
                f"{len(removed)} checkpoint, log and metrics file(s) "
                f"(to continue that run instead, use --resume {self.run_dir.name})"
            )

    def _tokenizer(self, split: SplitData) -> WordTokenizer:
        if self.resume_state is not None:
            return ckpt.load_run_tokenizer(self.run_dir)
        captions = [caption for record in split.train for caption in record.captions]
        return WordTokenizer(self.config.vocab_size).build_vocab(captions, self.config.min_freq)

    def _make_loaders(self, split: SplitData) -> None:
        config = self.config
        assert isinstance(config.batch_size, int)  # __init__ resolved "auto"
        caches = [
            build_image_cache(
                records,
                config.image_size,
                config.resize_mode,
                cache_dir=config.cache_dir,
                progress=self.progress,
            )
            for records in (split.train, split.val)
        ]
        length = config.max_caption_length
        self.train_set = CaptionDataset(
            split.train,
            caches[0],
            self.tokenizer,
            length,
            config.seed,
            max_shift=config.augment_max_shift,
        )
        self.val_set = CaptionDataset(
            split.val, caches[1], self.tokenizer, length, config.seed, train=False
        )
        # The training images as evaluation sees them (first caption, no shift), on a fixed
        # subset the size of the validation set: train loss in eval mode, comparable to val.
        train_view = CaptionDataset(
            split.train, caches[0], self.tokenizer, length, config.seed, train=False
        )
        self.train_eval_set = Subset(train_view, self._train_eval_indices())
        common: dict[str, Any] = {
            "num_workers": config.num_workers,
            "pin_memory": config.pin_memory,
            "device_type": self.device.type,
            "seed": config.seed,
        }
        drop_last = len(self.train_set) > config.batch_size
        per_process = config.batch_size // self.world_size
        self.train_loader: DataLoader[Any] | DeviceLoader
        if config.resolve_data_on_device(self.device, self.world_size):
            self.train_loader = DeviceLoader(
                self.train_set, per_process, self.device, seed=config.seed, drop_last=drop_last
            )
        else:
            self.train_loader = make_loader(
                self.train_set,
                per_process,
                shuffle=True,
                drop_last=drop_last,
                distributed=self.world_size > 1,
                num_replicas=self.world_size,
                rank=self.rank,
                **common,
            )
        self.val_loader = make_loader(
            self._val_share(self.val_set), config.batch_size, shuffle=False, **common
        )
        self.train_eval_loader = make_loader(
            self._val_share(self.train_eval_set), config.batch_size, shuffle=False, **common
        )

    def _train_eval_indices(self) -> list[int]:
        """A fixed subset of the training set, as large as the validation set: indices drawn
        (then sorted) by a generator seeded with `config.seed`, the same on every process."""
        count = min(len(self.val_set), len(self.train_set))
        generator = torch.Generator().manual_seed(self.config.seed)
        return sorted(torch.randperm(len(self.train_set), generator=generator)[:count].tolist())

    def _val_share(self, dataset: CaptionDataset | Subset[Any]) -> Subset[Any]:
        """This process's evaluation batches: whole batches of `batch_size` consecutive samples,
        dealt round-robin, so each sample counts once and every batch (and so its contrastive
        loss) is the same as with one process."""
        assert isinstance(self.config.batch_size, int)  # __init__ resolved "auto"
        size, count = self.config.batch_size, len(dataset)
        batches = range(self.rank, -(-count // size), self.world_size)
        indices = [i for b in batches for i in range(b * size, min((b + 1) * size, count))]
        return Subset(dataset, indices)

    def _make_optimizer(self) -> None:
        config = self.config
        self.optimizer = make_optimizer(self.model, config, self.device.type)
        steps_per_epoch = math.ceil(len(self.train_loader) / config.grad_accum_steps)
        self.total_steps = steps_per_epoch * config.num_epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _warmup_cosine(config.warmup_steps, self.total_steps)
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.weights = LossWeights.from_config(config)
        self.step = TrainingStep(
            self.model,
            self.optimizer,
            config,
            self.precision,
            forward=self.forward,
            scaler=self.scaler,
            scheduler=self.scheduler,
            world_size=self.world_size,
            fast=config.resolve_fast_path(self.device),
        )
        self.epoch = 0
        self.global_step = 0
        self.best_val = math.inf
        self.epochs_without_improvement = 0
        self._bad_in_a_row = 0
        self._position: _EpochPosition | None = None

    def _write_run_files(self) -> None:
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(self.run_dir / ckpt.CONFIG_FILE)
        if self.resume_state is None:  # a resume keeps the run's own, checked, tokenizer files
            ckpt.save_run_tokenizer(self.tokenizer, self.run_dir)

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
            if self._early_stop():
                patience = self.epochs_without_improvement
                log(f"Early stopping: no better val loss for {patience} epochs")
                break

    def _run_epoch(self) -> _EpochPosition | None:
        """Train one epoch; returns the position if a stop was requested part-way.

        The loader's batches are taken in groups of `grad_accum_steps`, one optimizer step per
        group; when the epoch's batches do not divide evenly, the last group is smaller and
        still steps (on the mean gradient of the batches it holds), so no gradient crosses into
        the next epoch and `last.pt` holds all of it.
        """
        config = self.config
        assert isinstance(config.batch_size, int)  # __init__ resolved "auto"
        set_loader_epoch(self.train_loader, self.epoch)
        self.model.train()
        resumed, self._position = self._position, None
        done = resumed.batches_done if resumed else 0
        sums = torch.zeros(len(REPORTED), device=self.device)
        if resumed:  # a position saved before the chance was reported holds the losses only
            sums[: len(resumed.sums)] += resumed.sums.to(self.device)
        samples = resumed.samples if resumed else 0
        skipped = resumed.skipped if resumed else 0
        count = len(self.train_loader)
        batches = itertools.islice(iter(self.train_loader), done, None)
        with progress_bar(
            total=count,
            initial=done,
            desc=f"Epoch {self.epoch + 1}/{config.num_epochs}",
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
                self.global_step += 1
                done += len(group)
                bar.update(len(group))
                sums += result.sums
                samples += result.samples
                if not result.finite:
                    skipped += 1
                    self._count_non_finite()
                else:
                    self._bad_in_a_row = 0
                logged = self._log_step(result.means, result.grad_norm, bar)
                for callback in self.callbacks:
                    callback.on_step_end(self, self.global_step, logged)
                here = (self.epoch, done, sums.cpu(), samples, skipped, config.batch_size)
                if self._stop_agreed():
                    return _EpochPosition(*here)
                if done < count and self._save_due():
                    self._save_last(_EpochPosition(*here))
                fault_point(f"step:{self.global_step}")
        self._train_sums, self._train_samples, self._skipped = sums, samples, skipped
        return None

    def _save_due(self) -> bool:
        """Whether `config.save_every_minutes` have passed since `last.pt` was last written."""
        minutes = self.config.save_every_minutes
        return minutes > 0 and time.monotonic() - self._last_saved >= minutes * 60

    def _count_non_finite(self) -> None:
        """Warn about a skipped step; stop the run after `MAX_BAD_STEPS_IN_A_ROW` in a row."""
        self._bad_in_a_row += 1
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

    def _stop_agreed(self) -> bool:
        """Whether any process was asked to stop, so all stop at the same step."""
        if self.world_size == 1:
            return self._stop_requested
        flag = torch.tensor([float(self._stop_requested)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self._stop_requested = bool(flag.item())
        return self._stop_requested

    def _log_step(self, figures: Tensor, grad_norm: Tensor, bar: tqdm) -> dict[str, float] | None:
        if self.global_step % self.config.log_interval:
            return None
        values = dict(zip(REPORTED, figures.tolist(), strict=True))
        self.steps.append(
            {
                "step": self.global_step,
                "epoch": self.epoch + 1,
                **values,
                "lr": cast(float, self.scheduler.get_last_lr()[0]),  # config lr: a float
                "grad_norm": float(grad_norm),
            }
        )
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

    @torch.no_grad()
    def evaluate(self, loader: DataLoader[Any]) -> dict[str, float]:
        """Average losses over `loader` (this process's share; summed over processes), in eval
        mode: the code path of `validate`, for any loader of whole batches."""
        self.model.eval()
        sums = torch.zeros(len(REPORTED), device=self.device)
        samples = 0
        for batch in loader:
            images = batch["images"].to(self.device, non_blocking=True)
            tokens = batch["tokens"].to(self.device, non_blocking=True)
            same_caption = same_caption_mask(tokens)
            with autocast_for(self.device.type, self.precision):
                output = self.model(images, tokens)
                losses = compute_losses(output, images, tokens, self.weights, same_caption)
            sums += reported(losses, same_caption) * len(images)
            samples += len(images)
        self.model.train()
        totals = torch.cat([sums, torch.tensor([float(samples)], device=self.device)])
        if self.world_size > 1:
            dist.all_reduce(totals)
        means = totals[:-1] / max(float(totals[-1]), 1.0)
        return dict(zip(REPORTED, means.tolist(), strict=True))

    def _finish_epoch(self, seconds: float) -> dict[str, float]:
        train = dict(
            zip(REPORTED, (self._train_sums / max(self._train_samples, 1)).tolist(), strict=True)
        )
        val = self.validate()
        train_eval = self.validate_train()
        self.epoch += 1
        row = {
            "epoch": self.epoch,
            **{f"train_{k}": v for k, v in train.items()},
            **{f"val_{k}": v for k, v in val.items()},
            **{f"train_eval_{k}": v for k, v in train_eval.items()},
            "lr": self.scheduler.get_last_lr()[0],
            "epoch_time_s": seconds,
            "skipped_steps": self._skipped,
        }
        self.history.append(row)
        self._print_epoch(row)
        improved = val["total"] < self.best_val
        if improved:
            self.best_val = val["total"]
            self.epochs_without_improvement = 0
            if self.is_main:
                ckpt.save_checkpoint(self.model.state_dict(), self.run_dir / ckpt.BEST_FILE)
            self.log(f"✓ Best model saved: {self.run_dir / ckpt.BEST_FILE}")
        else:
            self.epochs_without_improvement += 1
        self.log(f"Epoch time: {seconds:.1f}s | LR: {row['lr']:.2e}")
        self._save_epoch_files()
        return row

    def _print_epoch(self, row: dict[str, float]) -> None:
        for split in ("train", "val"):
            self.log(
                f"Epoch {self.epoch} {split.capitalize()}:\n"
                f"  Avg Loss: {row[f'{split}_total']:.4f} | Img: {row[f'{split}_image']:.4f} | "
                f"Cap: {row[f'{split}_caption']:.4f} | Align: {row[f'{split}_alignment']:.4f} "
                f"(chance {row[f'{split}_alignment_chance']:.4f})"
            )
        self.log(
            f"  Train (eval mode) Avg Loss: {row['train_eval_total']:.4f} | "
            f"Img: {row['train_eval_image']:.4f} | Cap: {row['train_eval_caption']:.4f} | "
            f"Align: {row['train_eval_alignment']:.4f} "
            f"(chance {row['train_eval_alignment_chance']:.4f})"
        )

    def _early_stop(self) -> bool:
        patience = self.config.early_stopping_patience
        return patience > 0 and self.epochs_without_improvement >= patience

    # ------------------------------------------------------------------ files

    def _save_epoch_files(self) -> None:
        if not self.is_main:
            return
        self._write_history()
        self._save_last(None)
        config = self.config
        if config.keep_checkpoints and self.epoch % config.save_interval == 0:
            name = f"epoch_{self.epoch - 1:03d}.pt"  # epoch_000.pt after the first, as before
            ckpt.save_checkpoint(
                {"model": self.model.state_dict(), "epoch": self.epoch}, self.run_dir / name
            )
            for old in sorted(self.run_dir.glob("epoch_*.pt"))[: -config.keep_checkpoints]:
                old.unlink()

    def _write_history(self) -> None:
        if not self.is_main:
            return
        atomic_write_text(self.run_dir / ckpt.HISTORY_FILE, _csv(HISTORY_COLUMNS, self.history))
        atomic_write_text(self.run_dir / ckpt.STEPS_FILE, _csv(STEP_COLUMNS, self.steps))

    def _save_last(self, position: _EpochPosition | None) -> None:
        if not self.is_main:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "total_steps": self.total_steps,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_val": self.best_val,
            "epochs_without_improvement": self.epochs_without_improvement,
            "history": self.history,
            "steps": self.steps,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "position": None if position is None else vars(position),
        }
        ckpt.save_checkpoint(state, self.run_dir / ckpt.LAST_FILE)
        self._last_saved = time.monotonic()
        self._write_history()

    def _restore(self, state: dict[str, Any]) -> None:
        source = self.run_dir / ckpt.LAST_FILE
        ckpt.load_weights(self.model, state["model"], source)
        for name, part in (
            ("optimizer", self.optimizer),
            ("scheduler", self.scheduler),
            ("scaler", self.scaler),
        ):
            _load_part(part, state, name, source)
        self._continue_schedule(state.get("total_steps"))
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.best_val = state["best_val"]
        self.epochs_without_improvement = state["epochs_without_improvement"]
        self.history = list(state["history"])
        self.steps = list(state["steps"])
        try:
            torch.set_rng_state(state["rng_cpu"])
        except (RuntimeError, TypeError) as error:
            raise ckpt.CheckpointError(
                f"{source}: 'rng_cpu' is not a random-number state ({error}); {ckpt.RETRAIN}"
            ) from None
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        if state["position"] is not None:
            batch_size = {"batch_size": self.config.batch_size}  # checked in __init__
            self._position = _EpochPosition(**{**batch_size, **state["position"]})
        self.log(f"Resumed {self.run_dir} at epoch {self.epoch + 1}, step {self.global_step}")

    def _continue_schedule(self, saved_total: int | None) -> None:
        """Set the next step's learning rate from this run's schedule, which spans
        `num_epochs`: resumed with more epochs than before, the run follows the cosine re-planned
        over them from the step it reached (not the old schedule's end, 0)."""
        step = self.scheduler.last_epoch
        rates = zip(self.scheduler.base_lrs, self.scheduler.lr_lambdas, strict=True)
        for group, (base, factor) in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = base * factor(step)
        if saved_total is not None and saved_total != self.total_steps:
            self.log(
                f"The learning-rate schedule now spans {self.config.num_epochs} epochs "
                f"({self.total_steps} steps, not {saved_total}): from step {step} the learning "
                f"rate is {self.optimizer.param_groups[0]['lr']:.2e}, decaying to 0 at the end"
            )


def _load_part(part: Any, state: dict[str, Any], name: str, source: Path) -> None:
    """`part.load_state_dict(state[name])`; a state that does not fit is a CheckpointError."""
    try:
        part.load_state_dict(state[name])
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as error:
        raise ckpt.CheckpointError(
            f"{source}: {name!r} does not fit this run's {name} ({type(error).__name__}: "
            f"{error}); delete {source.name} to start the run again, or {ckpt.RETRAIN}"
        ) from None


def _silent(_line: str) -> None:
    """The log of processes other than rank 0."""


def _distributed_context(device: torch.device) -> tuple[int, int, torch.device]:
    """(world size, rank, device) under `torchrun`, joining its process group; (1, 0, device)
    otherwise. NCCL on CUDA (one GPU per process, by LOCAL_RANK), gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 and not dist.is_initialized():
        return 1, 0, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_world_size(), dist.get_rank(), device


def run_config(run: str | Path, checkpoint_dir: str | Path = "checkpoints") -> Config:
    """The config a run was trained with (its `config.json`), for resuming it."""
    return ckpt.load_run_config(ckpt.resolve_run(run, checkpoint_dir))


def _warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up, then cosine decay to zero at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _csv(columns: Sequence[str], rows: Sequence[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


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
