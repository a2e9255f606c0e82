"""Training a run: the `Trainer` (epochs, validation, checkpoints, resume, several processes) and
the learning-rate range test."""

from mmlib.training.lr_find import (
    LRFindResult,
    lr_find,
)
from mmlib.training.trainer import (
    Callback,
    Trainer,
    TrainingError,
    run_config,
)

__all__ = ["Callback", "LRFindResult", "Trainer", "TrainingError", "lr_find", "run_config"]
