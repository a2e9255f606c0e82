"""What the course notebooks share: working from the project root, and one trained model."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mmlib.checkpoint import BEST_FILE, HISTORY_FILE, METRICS_FILE, load_model
from mmlib.config import Config
from mmlib.data import build_image_cache, load_split, to_pixels, to_uint8
from mmlib.inference import fit_run_imagination
from mmlib.metrics import CaptionMetrics, evaluate_run
from mmlib.train import Trainer

COURSE_PRESET = "cpu-tiny"
# What the course model must reach on the synthetic validation split (metrics.json's keys).
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


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding `pyproject.toml` and `mmlib/`.

    Falls back to `start` itself, so the course also runs from a plain folder of your own.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mmlib").is_dir():
            return folder
    return here


def enter_project_root() -> Path:
    """Change to the project root, so `Config`'s relative paths (`data/...`) mean the same in
    notebooks (which Jupyter starts in `notebooks/`) as on the command line."""
    root = project_root()
    os.chdir(root)
    return root


def train_and_evaluate(
    config: Config, resume: str | Path | None = None, progress: bool = True
) -> tuple[Path, CaptionMetrics]:
    """Train (or resume) a run, fit its `imagine.pt`, evaluate its best model, write
    `metrics.json` and print a report.

    This is `make train` and `python -m mmlib train`.
    """
    started = time.perf_counter()
    trainer = Trainer(config, resume=resume, progress=progress)
    trainer.fit()
    fit_run_imagination(trainer.run_dir, trainer.config.checkpoint_dir)
    metrics = evaluate_run(trainer.run_dir, trainer.config.checkpoint_dir)
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{trainer.run_dir}: trained and evaluated in {minutes:.1f} min")
    print(metrics.table())
    if metrics.subject_match is not None:
        missed = targets_missed(asdict(metrics))
        print("course targets:", "met" if not missed else f"MISSED {missed}")
    return trainer.run_dir, metrics


def targets_missed(metrics: dict[str, float | None]) -> dict[str, float | None]:
    """The `COURSE_TARGETS` that `metrics` (a metrics.json) falls short of, with its values."""
    return {
        name: metrics.get(name)
        for name, target in COURSE_TARGETS.items()
        if (metrics.get(name) or 0.0) < target
    }


def ensure_run(config: Config) -> Path:
    """A run folder with all `config.num_epochs` epochs in its history: loaded if a previous call
    (or session) finished it, else trained afresh, quietly. Notebooks use it for short runs."""
    run_dir = Path(config.checkpoint_dir) / (config.run_name or config.preset_name)
    history = run_dir / HISTORY_FILE
    if history.is_file() and len(history.read_text().splitlines()) == config.num_epochs + 1:
        return run_dir
    Trainer(config, log=_quiet, progress=False).fit()
    return run_dir


def _quiet(_line: str) -> None:
    pass


def ensure_course_run(config: Config | None = None) -> Path:
    """The course model's run folder, training it first (as `make train`) if it is missing."""
    config = config or Config.preset(COURSE_PRESET)
    run_dir = Path(config.checkpoint_dir) / (config.run_name or config.preset_name)
    if not ((run_dir / BEST_FILE).is_file() and (run_dir / METRICS_FILE).is_file()):
        run_dir, _ = train_and_evaluate(config)
    return run_dir


@dataclass(frozen=True)
class ValidationExamples:
    """Validation images, the model's reconstructions (both uint8 [N, C, H, W]) and captions."""

    images: torch.Tensor
    reconstructions: torch.Tensor
    generated: list[str]
    truth: list[str]


def validation_examples(
    run: str | Path, count: int = 6, checkpoint_dir: str | Path = "checkpoints"
) -> ValidationExamples:
    """The first `count` validation images of a run with its reconstructions and greedy captions."""
    model, tokenizer, config = load_model(run, checkpoint_dir)
    records = load_split(config).val[:count]
    images = build_image_cache(records, config.image_size, config.resize_mode, progress=False)
    pixels = to_pixels(images)
    return ValidationExamples(
        images=images,
        reconstructions=to_uint8(model.reconstruct(pixels)),
        generated=tokenizer.batch_decode(model.generate(pixels)),
        truth=[record.captions[0] for record in records],
    )
