"""Trainer overhead: the same model, data and steps through `Trainer` and a bare loop.

Runs alternate (bare, trainer, bare, trainer, ...) so both see the same machine load; prints the
median steps/s of each and their ratio. A benchmark, not a test: two noisy cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mmlib.config import Config
from mmlib.model.losses import LossWeights, compute_losses
from mmlib.training.trainer import Callback, Trainer


class _StopAfter(Callback):
    """Times `steps` optimizer steps after a warm-up, then stops the trainer."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.started = 0.0
        self.seconds = 0.0

    def on_step_end(self, trainer: Trainer, step: int, losses: dict[str, float] | None) -> None:
        if step == self.warmup:
            self.started = time.perf_counter()
        if step == self.warmup + self.steps:
            self.seconds = time.perf_counter() - self.started
            trainer.request_stop()


def trainer_steps_per_second(config: Config, warmup: int, steps: int) -> float:
    """Steps/s of `Trainer.fit` over `steps` steps after `warmup` steps."""
    timer = _StopAfter(warmup, steps)
    Trainer(config, callbacks=[timer], log=lambda _line: None, progress=False).fit()
    return steps / timer.seconds


def bare_steps_per_second(trainer: Trainer, warmup: int, steps: int) -> float:
    """Steps/s of a hand-written loop over the trainer's own model, optimizer and loader."""
    model, optimizer, weights = (
        trainer.model,
        trainer.optimizer,
        LossWeights.from_config(trainer.config),
    )
    batches = iter(trainer.train_loader)
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(trainer.train_loader)
            batch = next(batches)
        images, tokens = batch["images"], batch["tokens"]
        losses = compute_losses(model(images, tokens), images, tokens, weights)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.config.gradient_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        config = Config.preset(
            "cpu-tiny", checkpoint_dir=Path(folder), log_interval=10, num_epochs=100
        )
        bare_trainer = Trainer(config, log=lambda _line: None, progress=False)
        bare_trainer.prepare()  # the same model, optimizer and loader, without fit()'s loop
        bare, ours = [], []
        for _ in range(args.rounds):
            bare.append(bare_steps_per_second(bare_trainer, args.warmup, args.steps))
            ours.append(trainer_steps_per_second(config, args.warmup, args.steps))
    b, t = statistics.median(bare), statistics.median(ours)
    print(f"bare loop: {b:.2f} steps/s (median of {args.rounds}: {[round(x, 2) for x in bare]})")
    print(f"Trainer:   {t:.2f} steps/s (median of {args.rounds}: {[round(x, 2) for x in ours]})")
    print(f"Trainer overhead: {100 * (b / t - 1):+.1f}% (target < 5%)")


if __name__ == "__main__":
    main()
