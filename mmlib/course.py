"""What the course notebooks share: working from the project root, and one trained model."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mmlib.checkpoint import BEST_FILE, METRICS_FILE
from mmlib.config import Config
from mmlib.metrics import CaptionMetrics, evaluate_run
from mmlib.train import Trainer

COURSE_PRESET = "cpu-tiny"


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
    """Train (or resume) a run, evaluate its best model, write `metrics.json`, print a report.

    This is `make train` and `python -m mmlib train`.
    """
    started = time.perf_counter()
    trainer = Trainer(config, resume=resume, progress=progress)
    trainer.fit()
    metrics = evaluate_run(trainer.run_dir, trainer.config.checkpoint_dir)
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{trainer.run_dir}: trained and evaluated in {minutes:.1f} min")
    print(metrics.table())
    return trainer.run_dir, metrics


def ensure_course_run(config: Config | None = None) -> Path:
    """The course model's run folder, training it first (as `make train`) if it is missing."""
    config = config or Config.preset(COURSE_PRESET)
    run_dir = Path(config.checkpoint_dir) / (config.run_name or config.preset_name)
    if not ((run_dir / BEST_FILE).is_file() and (run_dir / METRICS_FILE).is_file()):
        run_dir, _ = train_and_evaluate(config)
    return run_dir
