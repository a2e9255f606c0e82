"""`lr_find`: a learning-rate range test (Smith 2015, "Cyclical Learning Rates", section 3.3).

Train for a short while with a learning rate that grows exponentially from `start_lr` to
`end_lr`, one value per optimizer step, record the training loss, and stop once it diverges.
The loss falls fastest somewhere below the learning rate at which training blows up: that
learning rate is the suggestion. The model, the optimizer, the training loader's epoch and the
global random state are put back afterwards, so the test leaves a `Trainer` as it found it.

Files: building the `Trainer` runs `Trainer.prepare`, which writes `config.json` and
`tokenizer.json` into the config's run folder (`checkpoint_dir/<run_name or preset>`), the
same files `fit` would write first. Nothing else is written: no checkpoint, no history. The
config is used as given; pass `run_name="lr-find"` (or anything else) to keep those two files
out of a real run's folder.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mmlib.config import Config
from mmlib.data.dataset import set_loader_epoch
from mmlib.evaluation.curves import STEP_SPIKE_FACTOR, ema
from mmlib.training.run_state import RngState
from mmlib.training.trainer import Trainer

MIN_POINTS = 3  # fewer recorded points up to the minimum than this: the fallback rule
MIN_FALL = 0.01  # a smoothed curve falling by less than this fraction is flat: the fallback


@dataclass(frozen=True)
class LRFindResult:
    """What a range test saw.

    `learning_rates[i]`, `losses[i]` and `smoothed[i]` belong to one optimizer step: the
    learning rate used, the total (weighted) training loss of its batch, and the bias-corrected
    exponential moving average of the losses so far. `steps` counts the optimizer steps run
    (the diverging one included; a non-finite loss is counted but not recorded), `seconds` the
    wall-clock time of the whole call (building the trainer included when `lr_find` built it),
    `diverged` whether the test stopped early on divergence.
    """

    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float
    steps: int
    seconds: float
    diverged: bool

    def outcome(self) -> str:
        """What the raw (unsmoothed) loss did, in words: how far it rose above its minimum, at
        which learning rates, and whether the test stopped on its smoothed stop rule or ran every
        step. A rise above `mmlib.evaluation.STEP_SPIKE_FACTOR` (beyond batch noise) is
        reported."""
        ran = "ran all steps"
        if self.diverged:
            ran = f"stopped on divergence after {self.steps} steps"
        if not self.losses:
            return f"{ran}; no finite loss recorded"
        lowest = int(np.argmin(self.losses))
        peak = lowest + int(np.argmax(self.losses[lowest:]))
        low, high = self.losses[lowest], self.losses[peak]
        rise = high / low if low > 0 else math.inf
        if rise <= STEP_SPIKE_FACTOR:
            return f"{ran}; the raw loss stayed within {rise:.1f}x of its minimum {low:.3g}"
        blew_up = (
            f"the raw loss rose {rise:.0f}x, from {low:.3g} at lr {self.learning_rates[lowest]:.2g}"
            f" to {high:.3g} at lr {self.learning_rates[peak]:.2g}"
        )
        if self.diverged:
            return f"{blew_up}: {ran}"
        return f"{blew_up}; the smoothed loss stayed under the stop rule, so the test {ran}"


def lr_find(
    config: Config,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    num_steps: int = 100,
    smoothing: float = 0.9,
    divergence_factor: float = 4.0,
    trainer: Trainer | None = None,
) -> LRFindResult:
    """Run a learning-rate range test on `config`'s model and training data.

    Step `i` (0-based) of `num_steps` uses the learning rate
    `start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))`, set directly on every parameter
    group of the trainer's AdamW (no scheduler, no warm-up); each step is the Trainer's own
    `mmlib.model.step.TrainingStep` (`Trainer.make_step`: loss weights, precision, gradient
    clipping, `grad_accum_steps` micro-batches, fast path) with a loss scaler of its own; the
    training loader is cycled (a new epoch of its order each time it runs out). The recorded
    loss is the step's mean total loss over its micro-batches. It is smoothed with an
    exponential moving average that is bias-corrected (divided by
    `1 - smoothing ** (i + 1)`), so the curve does not start near zero. The test stops at the
    first step whose loss is non-finite or whose smoothed loss exceeds `divergence_factor`
    times the lowest smoothed loss so far.

    Suggested learning rate: on the smoothed curve up to its minimum, the learning rate where
    the loss falls fastest, that is where the slope d(smoothed loss) / d(ln lr) is most
    negative. If the curve is too short (fewer than `MIN_POINTS` points up to the minimum) or
    too flat (it falls by less than `MIN_FALL`, 1 %, of its highest value before the minimum),
    it is the learning rate at the minimum divided by 10 instead. Either way it is kept within
    [start_lr, end_lr].

    `trainer` reuses a prepared (or preparable) `Trainer` instead of building
    `Trainer(config, log=..., progress=False)`; its model, optimizer, loader epoch and the
    global random state are restored afterwards. With a given trainer, `config` is not used.
    """
    started = time.perf_counter()
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr; got start_lr={start_lr}, end_lr={end_lr}")
    if num_steps < 2:
        raise ValueError(f"num_steps must be at least 2; got {num_steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1); got {smoothing}")
    if divergence_factor <= 1:
        raise ValueError(f"divergence_factor must be above 1; got {divergence_factor}")
    if trainer is None:
        trainer = Trainer(config, log=lambda _line: None, progress=False)
    trainer.prepare()
    saved = _save(trainer)
    try:
        torch.manual_seed(trainer.config.seed)
        learning_rates, losses, steps, diverged = _run(
            trainer, start_lr, end_lr, num_steps, smoothing, divergence_factor
        )
    finally:
        _restore(trainer, saved)
    smoothed = ema(losses, smoothing)
    return LRFindResult(
        learning_rates=learning_rates,
        losses=losses,
        smoothed=smoothed,
        suggested_lr=suggest_lr(learning_rates, smoothed, start_lr, end_lr),
        steps=steps,
        seconds=time.perf_counter() - started,
        diverged=diverged,
    )


def suggest_lr(
    learning_rates: list[float], smoothed: list[float], start_lr: float, end_lr: float
) -> float:
    """The rule of `lr_find`: the steepest descent of the smoothed loss against ln(lr) up to
    its (first) minimum; if that part is too short or too flat, the lr at the minimum / 10.
    Clamped to [start_lr, end_lr]."""
    if not smoothed:
        return start_lr
    lowest = int(np.argmin(smoothed))
    suggestion = learning_rates[lowest] / 10
    curve = np.asarray(smoothed[: lowest + 1])
    fall = float(curve.max() - curve[-1])
    if len(curve) >= MIN_POINTS and fall >= MIN_FALL * abs(float(curve.max())):
        slopes = np.gradient(curve, np.log(learning_rates[: lowest + 1]))
        steepest = int(np.argmin(slopes))
        if slopes[steepest] < 0:
            suggestion = learning_rates[steepest]
    return float(min(max(suggestion, start_lr), end_lr))


def _run(
    trainer: Trainer,
    start_lr: float,
    end_lr: float,
    num_steps: int,
    smoothing: float,
    divergence_factor: float,
) -> tuple[list[float], list[float], int, bool]:
    """The test itself: (learning rates, losses, steps run, diverged)."""
    optimizer = trainer.optimizer
    scaler = torch.amp.GradScaler(trainer.device.type, enabled=trainer.precision == "fp16")
    step = trainer.make_step(scaler)  # a scaler of its own and no scheduler: the trainer's stay
    batches = _cycle(trainer)
    ratio = end_lr / start_lr
    learning_rates: list[float] = []
    losses: list[float] = []
    best, steps = math.inf, 0
    trainer.model.train()
    optimizer.zero_grad(set_to_none=True)
    for index in range(num_steps):
        lr = start_lr * ratio ** (index / (num_steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro_batches = [
            (batch["images"], batch["tokens"])
            for batch in itertools.islice(batches, trainer.config.grad_accum_steps)
        ]
        loss = float(step(micro_batches).means[0])
        steps += 1
        if not math.isfinite(loss):
            return learning_rates, losses, steps, True
        learning_rates.append(lr)
        losses.append(loss)
        smoothed = ema(losses, smoothing)[-1]  # at most num_steps values: cheap to redo
        best = min(best, smoothed)
        if smoothed > divergence_factor * best:
            return learning_rates, losses, steps, True
    return learning_rates, losses, steps, False


def _cycle(trainer: Trainer) -> Iterator[dict[str, Any]]:
    """The training batches, epoch after epoch (each with its own order and captions)."""
    epoch = trainer.epoch
    while True:
        set_loader_epoch(trainer.train_loader, epoch)
        yield from trainer.train_loader
        epoch += 1


@dataclass
class _Saved:
    """What `lr_find` changes and puts back: the weights, the optimizer's state, the model's
    mode and the global random state."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    training: bool
    rng: RngState


def _save(trainer: Trainer) -> _Saved:
    return _Saved(
        model={k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        optimizer=copy.deepcopy(trainer.optimizer.state_dict()),
        training=trainer.model.training,
        rng=RngState.capture(),
    )


def _restore(trainer: Trainer, saved: _Saved) -> None:
    trainer.model.load_state_dict(saved.model)
    trainer.optimizer.load_state_dict(saved.optimizer)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.model.train(saved.training)
    set_loader_epoch(trainer.train_loader, trainer.epoch)
    saved.rng.restore()
