"""`make train` and `python -m mmlib train`: train a run, fit its `imagine.pt`, evaluate it, write
`metrics.json` and print the report, with the course targets it is held to."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from mmlib.config import Config
from mmlib.evaluation.metrics import EvaluationMetrics, evaluate_run
from mmlib.inference.imagine import IMAGINE_FILE, fit_run_imagination, fit_steps
from mmlib.training.setup import PreparedRun, prepare_run
from mmlib.training.trainer import Trainer

# What the course model must reach on the synthetic test split (metrics.json's keys); the recipe
# was tuned on the validation split, so these final figures come from images it never saw.
COURSE_TARGETS = {
    "subject_match": 0.95,
    "bleu4": 0.8,
    "recall_at_1": 0.7,
    "imagine_subject_match": 0.5,
}
# The metrics.json key of each target's baseline (shuffled images, or random latents).
COURSE_BASELINES = {
    "subject_match": "subject_match_shuffled",
    "bleu4": "bleu4_shuffled",
    "recall_at_1": "recall_at_1_shuffled",
    "imagine_subject_match": "imagine_random_subject_match",
}


def train_and_evaluate(
    run: PreparedRun | Config, resume: str | Path | None = None, progress: bool = True
) -> tuple[Path, EvaluationMetrics | None]:
    """Train (or resume) a run, fit its `imagine.pt` (unless `config.imagine_steps` is 0),
    evaluate its best model, write `metrics.json` and print a report, saying which stage it is
    in; fitting and evaluating run on the training device.

    This is `make train` and `python -m mmlib train`. A run stopped part-way (Ctrl-C, SIGTERM)
    returns after saving `last.pt`, with no metrics: fitting and evaluating wait for its end.
    Under `torchrun` only rank 0 fits and evaluates; the other ranks return after training, with
    no metrics (waiting in a collective for an evaluation that can take hours would outlast the
    process group's timeout).

    `run` is what `mmlib.training.prepare_run` resolved (the concrete batch size, the device,
    the processes, the resumed state); a bare `Config` is resolved here, with `resume`.
    """
    if isinstance(run, Config):
        run = prepare_run(run, resume)
    minutes = StageTimes()
    trainer = Trainer(run, progress=progress)
    with minutes.stage("training"):
        trainer.fit()
    if trainer.stopped:
        print(f"Training stopped: {IMAGINE_FILE} not fitted, best.pt not evaluated")
        return trainer.run_dir, None
    if not trainer.is_main:
        print(f"rank {trainer.rank}: training done; rank 0 fits {IMAGINE_FILE} and evaluates")
        return trainer.run_dir, None
    checkpoint_dir = trainer.config.checkpoint_dir
    pairs = sum(len(record.captions) for record in trainer.train_set.records)
    steps = fit_steps(pairs, trainer.config.imagine_steps)
    if steps:
        print(
            f"\nSTEP 7: Fitting {IMAGINE_FILE} (text -> image): {steps} steps on {pairs} "
            f"training pairs, on {trainer.device}..."
        )
        with minutes.stage(f"fitting {IMAGINE_FILE}"):
            fit_run_imagination(trainer.run_dir, checkpoint_dir, trainer.device, steps, progress)
    else:
        print(f"\nSTEP 7: Fitting {IMAGINE_FILE}: skipped (imagine_steps=0)")
    held_out = "test split" if trainer.test_images else "validation split (no test split)"
    print(f"\nSTEP 8: Evaluating best.pt on the {held_out}, on {trainer.device}...")
    with minutes.stage("evaluation"):
        metrics = evaluate_run(trainer.run_dir, checkpoint_dir, trainer.device, progress=progress)
    print(f"\n{trainer.run_dir}: trained and evaluated in {minutes}")
    print(metrics.table())
    if metrics.subject_match is not None:
        missed = targets_missed(asdict(metrics))
        print("course targets:", "met" if not missed else f"MISSED {missed}")
    return trainer.run_dir, metrics


class StageTimes:
    """Wall-clock minutes of each stage of a run, in order, to show where the time goes."""

    def __init__(self) -> None:
        self.minutes: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the `with` block as stage `name`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.minutes[name] = (time.perf_counter() - started) / 60

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {minutes:.1f}" for name, minutes in self.minutes.items())
        return f"{sum(self.minutes.values()):.1f} min ({parts})"


def targets_missed(metrics: dict[str, float | None]) -> dict[str, float | None]:
    """The `COURSE_TARGETS` that `metrics` (a metrics.json) falls short of, with its values."""
    return {
        name: metrics.get(name)
        for name, target in COURSE_TARGETS.items()
        if (metrics.get(name) or 0.0) < target
    }
