"""`prepare_run`: everything a run resolves before it trains, in one place.

The run folder and the resumed `last.pt` (read and checked), the device, the process group
under `torchrun`, and the concrete batch size (`batch_size="auto"` asks
`mmlib.sizing.batch_size.resolve_batch_size`), checked against the device's memory, the number
of processes and the batch size an interrupted epoch was counted in. `Trainer` takes the
`PreparedRun` it returns; `make train`, `python -m mmlib train` and the notebooks call it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from mmlib import checkpoint as ckpt
from mmlib.config import AUTO, Config, ConfigError, get_device
from mmlib.sizing.batch_size import check_memory_fits, resolve_batch_size


class TrainingError(RuntimeError):
    """Training cannot go on (for example, the loss keeps being non-finite)."""


@dataclass(frozen=True)
class PreparedRun:
    """A run resolved for training: `config` with an integer `batch_size` (the global batch),
    its folder `run_dir`, the `device` this process trains on, `world_size` processes of which
    this is `rank`, and `resume_state`, the checked `last.pt` to continue from (None for a
    fresh run, or a resumed one that stopped before its first `last.pt`, which
    `restart_note` then says)."""

    config: Config
    run_dir: Path
    device: torch.device
    world_size: int = 1
    rank: int = 0
    resume_state: dict[str, Any] | None = None
    restart_note: str = ""

    @property
    def batch_size(self) -> int:
        """The global batch size (`config.batch_size`, resolved)."""
        assert isinstance(self.config.batch_size, int)  # prepare_run resolved "auto"
        return self.config.batch_size

    @property
    def is_main(self) -> bool:
        """Whether this is the process that logs and writes the run's files (rank 0)."""
        return self.rank == 0


def prepare_run(config: Config, resume: str | Path | None = None) -> PreparedRun:
    """Resolve `config` for training; `resume` (a run folder, a run name or "latest") continues
    that run from its `last.pt` (or, when the run stopped before its first `last.pt`, starts it
    again from the beginning). Under `torchrun` this joins the process group, and an "auto"
    batch size is the smallest any process found."""
    resume_state: dict[str, Any] | None = None
    restart_note = ""
    if resume is not None:
        run_dir = ckpt.resolve_run(resume, config.checkpoint_dir)
        last = run_dir / ckpt.LAST_FILE
        if last.is_file():
            resume_state = ckpt.check_training_state(ckpt.load_checkpoint(last), last)
        else:
            restart_note = (
                f"{last} was never written (the run stopped before its first save): "
                f"starting {run_dir} again from the beginning with its config.json"
            )
    else:
        run_dir = Path(config.checkpoint_dir) / (config.run_name or config.preset_name)
    config = config.check_consistency()
    world_size, rank, device = _distributed_context(get_device(config))
    if config.batch_size == AUTO:
        found = _auto_batch_size(config, device, world_size)
        config = config.with_overrides({"batch_size": found})
    check_memory_fits(config, device, int(config.batch_size) // world_size)
    if config.batch_size % world_size:
        raise ConfigError(
            f"batch_size={config.batch_size} is the global batch and must be divisible by "
            f"the {world_size} processes"
        )
    run = PreparedRun(config, run_dir, device, world_size, rank, resume_state, restart_note)
    _check_resumed_batch_size(run)
    return run


def run_config(run: str | Path, checkpoint_dir: str | Path = "checkpoints") -> Config:
    """The config a run was trained with (its `config.json`), for resuming it."""
    return ckpt.load_run_config(ckpt.resolve_run(run, checkpoint_dir))


def _check_resumed_batch_size(run: PreparedRun) -> None:
    """Refuse a batch size other than the one a run stopped mid-epoch with: its position
    counts batches of that size. (A position saved before it recorded the batch size was
    counted in the run's config.json's, which the resume that started it had written.)"""
    position = run.resume_state["position"] if run.resume_state else None
    if position is None:
        return
    saved = position.get("batch_size") or ckpt.load_run_config(run.run_dir).batch_size
    if saved != run.config.batch_size:
        raise TrainingError(
            f"{run.run_dir / ckpt.LAST_FILE}: the run stopped in the middle of epoch "
            f"{position['epoch'] + 1}, after {position['batches_done']} batches of {saved}; "
            f"resume it with --batch-size {saved} (not {run.config.batch_size}): the batch "
            "size can change when a run resumes at the end of an epoch"
        )


def _auto_batch_size(config: Config, device: torch.device, world_size: int) -> int:
    """`resolve_batch_size`, the same on every process (the smallest if they differ)."""
    found = resolve_batch_size(config, device, world_size)
    size = torch.tensor([found], device=device)
    if world_size > 1:
        dist.all_reduce(size, op=dist.ReduceOp.MIN)
    return int(size)


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
