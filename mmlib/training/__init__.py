"""Training a run: `prepare_run` (resume, device, processes, batch size), the `Trainer` (epochs,
validation, checkpoints), `RunState` (where a run is, and its `last.pt`) and the learning-rate
range test."""

from mmlib.training.build import RunParts, build_run
from mmlib.training.loaders import RunLoaders, make_run_loaders
from mmlib.training.lr_find import (
    LRFindResult,
    lr_find,
)
from mmlib.training.run_state import EpochPosition, RngState, RunState
from mmlib.training.setup import PreparedRun, TrainingError, prepare_run, run_config
from mmlib.training.trainer import (
    Callback,
    Trainer,
    evaluate_losses,
)

__all__ = [
    "Callback",
    "EpochPosition",
    "LRFindResult",
    "PreparedRun",
    "RngState",
    "RunLoaders",
    "RunParts",
    "RunState",
    "Trainer",
    "TrainingError",
    "build_run",
    "evaluate_losses",
    "lr_find",
    "make_run_loaders",
    "prepare_run",
    "run_config",
]
