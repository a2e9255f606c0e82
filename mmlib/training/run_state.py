"""`RunState`: where a run is (epoch, optimizer step, position within an interrupted epoch, best
validation loss, history) and the random-number state, and their entries in `last.pt`.

The entries of `last.pt` are those `mmlib.checkpoint.check_training_state` checks: the
`state_dict` of the model, optimizer, scheduler and scaler, then `total_steps`, `epoch`,
`global_step`, `best_val`, `epochs_without_improvement`, `history`, `steps`, `rng_cpu`,
`rng_cuda` and `position` (None, or where an interrupted epoch stopped).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmlib import checkpoint as ckpt
from mmlib.files import atomic_write_text
from mmlib.model.step import REPORTED

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


@dataclass
class EpochPosition:
    """Where an interrupted epoch stopped, so a resume continues from the same batch."""

    epoch: int
    batches_done: int
    sums: Tensor
    samples: int
    skipped: int
    # The global batch size the batches were counted in: one with any number of processes or
    # accumulation steps (process r reads positions r, r + n, ... of the same order).
    batch_size: int


@dataclass
class RngState:
    """The global random-number state: torch's CPU generator and every CUDA device's (none
    without CUDA). `capture()` takes it now; `restore()` puts it back, so the next draws are
    the ones that followed the capture."""

    cpu: Tensor
    cuda: list[Tensor] = field(default_factory=list)

    @classmethod
    def capture(cls) -> RngState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return cls(torch.get_rng_state(), list(cuda))

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self.cuda)


@dataclass
class RunState:
    """Where a run is: `epoch` (epochs finished), `global_step` (optimizer steps taken),
    `best_val` and `epochs_without_improvement` (best model, early stopping), the `history` (one
    row per epoch) and `steps` (one row per logged step) so far, and `position`, where the
    epoch a resumed run stopped in had got to (None at an epoch's end). `save` writes it with
    the training objects' states and the random state into `last.pt`; `load` reads it back."""

    epoch: int = 0
    global_step: int = 0
    best_val: float = math.inf
    epochs_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    position: EpochPosition | None = None

    def start_epoch(self, device: torch.device) -> tuple[int, Tensor, int, int]:
        """Where the epoch `epoch` starts: (batches done, loss sums on `device`, samples,
        skipped steps), from `position` if an interrupted epoch saved one (taking it: the
        epoch after starts afresh), else all 0."""
        resumed, self.position = self.position, None
        sums = torch.zeros(len(REPORTED), device=device)
        if resumed is None:
            return 0, sums, 0, 0
        # A position saved before the chance was reported holds the losses only.
        sums[: len(resumed.sums)] += resumed.sums.to(device)
        return resumed.batches_done, sums, resumed.samples, resumed.skipped

    def record_step(self, figures: dict[str, float], lr: float, grad_norm: float) -> None:
        """Add the `steps` row of the optimizer step just taken (`global_step`)."""
        row = {"step": self.global_step, "epoch": self.epoch + 1, **figures, "lr": lr}
        self.steps.append({**row, "grad_norm": grad_norm})

    def record_epoch(self, row: dict[str, float], val_total: float) -> bool:
        """Count the epoch just finished with its `history` row; whether `val_total`, its val
        loss, is the best so far (else it is one more epoch without improvement)."""
        self.epoch += 1
        self.history.append({"epoch": self.epoch, **row})
        if val_total < self.best_val:
            self.best_val = val_total
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        return False

    def patience_ran_out(self, patience: int) -> bool:
        """Whether early stopping ends the run: `patience` epochs (0: never) without a better
        val loss."""
        return patience > 0 and self.epochs_without_improvement >= patience

    def write_history(self, run_dir: Path) -> None:
        """Write `history.csv` and `steps.csv` (each whole, atomically) into `run_dir`."""
        atomic_write_text(run_dir / ckpt.HISTORY_FILE, _csv(HISTORY_COLUMNS, self.history))
        atomic_write_text(run_dir / ckpt.STEPS_FILE, _csv(STEP_COLUMNS, self.steps))

    def save(
        self,
        path: Path,
        parts: Mapping[str, Any],
        total_steps: int,
        position: EpochPosition | None,
    ) -> None:
        """Write `last.pt`: each of `parts`' (model, optimizer, scheduler, scaler) state_dict,
        this state, `position` (None at an epoch's end) and the random state now."""
        rng = RngState.capture()
        state = {
            **{name: part.state_dict() for name, part in parts.items()},
            "total_steps": total_steps,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_val": self.best_val,
            "epochs_without_improvement": self.epochs_without_improvement,
            "history": self.history,
            "steps": self.steps,
            "rng_cpu": rng.cpu,
            "rng_cuda": rng.cuda,
            "position": None if position is None else vars(position),
        }
        ckpt.save_checkpoint(state, path)

    @classmethod
    def load(
        cls,
        state: dict[str, Any],
        source: Path,
        model: nn.Module,
        parts: Mapping[str, Any],
        batch_size: int,
    ) -> RunState:
        """From a checked `last.pt` (`check_training_state`) read from `source`: load `model`'s
        weights and each of `parts`' state, set the global random state, and return where the
        run was. A saved position without its batch size was counted in `batch_size`."""
        ckpt.load_weights(model, state["model"], source)
        for name, part in parts.items():
            _load_part(part, state, name, source)
        run = cls(
            epoch=state["epoch"],
            global_step=state["global_step"],
            best_val=state["best_val"],
            epochs_without_improvement=state["epochs_without_improvement"],
            history=list(state["history"]),
            steps=list(state["steps"]),
        )
        try:
            torch.set_rng_state(state["rng_cpu"])
        except (RuntimeError, TypeError) as error:
            raise ckpt.CheckpointError(
                f"{source}: 'rng_cpu' is not a random-number state ({error}); {ckpt.RETRAIN}"
            ) from None
        RngState(state["rng_cpu"], state["rng_cuda"]).restore()  # the CPU's again, then CUDA's
        if state["position"] is not None:
            run.position = EpochPosition(**{"batch_size": batch_size, **state["position"]})
        return run


def _load_part(part: Any, state: dict[str, Any], name: str, source: Path) -> None:
    """`part.load_state_dict(state[name])`; a state that does not fit is a CheckpointError."""
    try:
        part.load_state_dict(state[name])
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as error:
        raise ckpt.CheckpointError(
            f"{source}: {name!r} does not fit this run's {name} ({type(error).__name__}: "
            f"{error}); delete {source.name} to start the run again, or {ckpt.RETRAIN}"
        ) from None


def _csv(columns: Sequence[str], rows: Sequence[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
