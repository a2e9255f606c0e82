"""Run folders: atomic saves, weights-only loading, and finding a run by path, name or `latest`.

A run folder `checkpoints/<run>/` holds `config.json`, `tokenizer.json`, `history.csv`,
`steps.csv`, `epoch_NNN.pt` (the last few), `last.pt` (full training state) and `best.pt` (the
model's `state_dict` alone, as train_production.py wrote it). Training writes through this
module; inference, analysis and the course read through it, without importing the trainer.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mmlib.config import Config
from mmlib.files import atomic_write_bytes
from mmlib.model import MultimodalModel
from mmlib.tokenizer import ProductionTokenizer

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
HISTORY_FILE = "history.csv"
STEPS_FILE = "steps.csv"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.json"


class CheckpointError(RuntimeError):
    """A run or checkpoint is missing, corrupt, or does not fit the model."""


def save_checkpoint(obj: Any, path: str | os.PathLike[str]) -> Path:
    """`torch.save` to memory, then an atomic write: `best.pt` is never half written."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """`torch.load(weights_only=True)`: tensors and plain containers only, never arbitrary code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(error).__name__}: {error}); it may be "
            "truncated or from another program — use another file of the run (last.pt, best.pt, "
            "epoch_NNN.pt)"
        ) from None


def load_weights(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike[str]
) -> None:
    """Load `state_dict` into `model` strictly; a mismatch names the keys and shapes that differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    reshaped = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(own[key].shape)}"
        for key in sorted(set(own) & set(state_dict))
        if state_dict[key].shape != own[key].shape
    ]
    if missing or unexpected or reshaped:
        parts = []
        if reshaped:
            parts.append(f"{len(reshaped)} shape(s) differ: {'; '.join(reshaped[:3])}")
        if missing:
            parts.append(f"{len(missing)} key(s) missing: {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:3])}")
        raise CheckpointError(
            f"{source}: the checkpoint was made for another architecture ({'; '.join(parts)}); "
            "load it with the config.json of the run that wrote it"
        )
    model.load_state_dict(state_dict)


def resolve_run(run: str | os.PathLike[str], checkpoint_dir: str | os.PathLike[str]) -> Path:
    """A run folder from a path, a run name under `checkpoint_dir`, or `latest`."""
    checkpoint_dir = Path(checkpoint_dir)
    if str(run) == "latest":
        runs = [p for p in checkpoint_dir.glob("*/") if (p / CONFIG_FILE).is_file()]
        if not runs:
            raise CheckpointError(f"no runs in {checkpoint_dir}/ (a run folder has {CONFIG_FILE})")
        return max(runs, key=_last_written)
    for candidate in (Path(run), checkpoint_dir / run):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise CheckpointError(
        f"no run {str(run)!r}: neither {Path(run)} nor {checkpoint_dir / run} holds {CONFIG_FILE}; "
        "give a run folder, a run name under the checkpoint folder, or 'latest'"
    )


def _last_written(run: Path) -> float:
    """When the run last wrote a file (its folder's own mtime misses in-place rewrites)."""
    return max(p.stat().st_mtime for p in run.iterdir())


def load_model(
    run: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str] = "checkpoints",
    which: str = BEST_FILE,
    device: str | torch.device = "cpu",
) -> tuple[MultimodalModel, ProductionTokenizer, Config]:
    """A ready model (eval mode), its tokenizer and config from a run folder, name or `latest`."""
    run_dir = resolve_run(run, checkpoint_dir)
    config = Config.load(run_dir / CONFIG_FILE)
    tokenizer = ProductionTokenizer.from_file(run_dir / TOKENIZER_FILE)
    model = MultimodalModel(config, len(tokenizer))
    state = load_checkpoint(run_dir / which)
    load_weights(model, state.get("model", state), run_dir / which)  # best.pt or last.pt
    return model.to(device).eval(), tokenizer, config
