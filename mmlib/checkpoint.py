"""Run folders: atomic saves, weights-only loading, and finding a run by path, name or `latest`.

A run folder `checkpoints/<run>/` holds `config.json`, `tokenizer.json`, `manifest.json` (the
fingerprint of the vocabulary the weights were trained with), `history.csv`, `steps.csv`,
`epoch_NNN.pt` (the last few), `last.pt` (full training state) and `best.pt` (the model's
`state_dict` alone, as train_production.py wrote it). Training writes through this module;
inference, analysis and the course read through it, without importing the trainer.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mmlib.config import Config, resolve_device
from mmlib.files import atomic_write_bytes, atomic_write_text
from mmlib.model import MultimodalModel
from mmlib.tokenizer import ProductionTokenizer

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
HISTORY_FILE = "history.csv"
STEPS_FILE = "steps.csv"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
VOCABULARY_KEY = "vocabulary_sha256"  # in the manifest: `ProductionTokenizer.fingerprint()`


EARLIER_RUN_OUTPUTS = ("*.pt", HISTORY_FILE, STEPS_FILE, METRICS_FILE)


def clear_run_outputs(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove an earlier run's checkpoints, logs and metrics from `run_dir` (its config and
    tokenizer are rewritten by the new run), so that a fresh run under the same name never mixes
    its files with an older one's. Returns the removed paths."""
    folder = Path(run_dir)
    removed = [path for pattern in EARLIER_RUN_OUTPUTS for path in sorted(folder.glob(pattern))]
    for path in removed:
        path.unlink()
    return removed


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
        with warnings.catch_warnings():  # a plain pickle's protocol: the refusal below says more
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, KeyError) as error:
        raise CheckpointError(_load_failure(path, error)) from None


def _load_failure(path: Path, error: Exception) -> str:
    """Why `path` did not load. A file that would need code to load is refused as such, never
    with torch's advice on turning the weights-only protection off."""
    other_file = "use another file of the run (last.pt, best.pt, epoch_NNN.pt)"
    text = str(error)
    if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in text:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:
            return (
                f"{path}: the file holds code ({found.group(1)}) that this library will not run: "
                f"it loads tensors and plain containers only; {other_file}"
            )
        return (
            f"{path}: not a checkpoint this library can load: damaged, from another program, or "
            f"holding code, which this library will not run; {other_file}"
        )
    first_line = text.splitlines()[0] if text else ""
    return (
        f"{path}: not a readable checkpoint ({type(error).__name__}: {first_line}); it may be "
        f"truncated or from another program — {other_file}"
    )


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


def save_run_tokenizer(tokenizer: ProductionTokenizer, run_dir: str | os.PathLike[str]) -> None:
    """Write `tokenizer.json`, then the fingerprint of its vocabulary in `manifest.json`, which
    every load of the run's weights checks (`best.pt` stays a bare `state_dict`)."""
    run_dir = Path(run_dir)
    tokenizer.save(run_dir / TOKENIZER_FILE)
    manifest = {VOCABULARY_KEY: tokenizer.fingerprint()}
    atomic_write_text(run_dir / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def load_run_tokenizer(run_dir: str | os.PathLike[str]) -> ProductionTokenizer:
    """The run's `tokenizer.json`, refused when its vocabulary is not the one `manifest.json`
    records for the weights (they would write garbled captions with it). A run written before
    the manifest existed loads with a warning."""
    run_dir = Path(run_dir)
    tokenizer = ProductionTokenizer.from_file(run_dir / TOKENIZER_FILE)
    recorded = _recorded_fingerprint(run_dir / MANIFEST_FILE)
    if recorded is None:
        warnings.warn(
            f"{run_dir / MANIFEST_FILE} not found (a run written before vocabulary fingerprints): "
            f"{TOKENIZER_FILE} cannot be checked against the weights; resuming the run writes it",
            stacklevel=2,
        )
    elif recorded != tokenizer.fingerprint():
        raise CheckpointError(
            f"{run_dir / TOKENIZER_FILE}: its vocabulary is not the one the weights were trained "
            f"with ({run_dir / MANIFEST_FILE} records {recorded[:12]}..., this file has "
            f"{tokenizer.fingerprint()[:12]}...); put back the run's own {TOKENIZER_FILE}: with "
            "another, the captions come out garbled"
        )
    return tokenizer


def _recorded_fingerprint(path: Path) -> str | None:
    """The vocabulary fingerprint a manifest records; None when there is no manifest."""
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        manifest = None
    fingerprint = manifest.get(VOCABULARY_KEY) if isinstance(manifest, dict) else None
    if not isinstance(fingerprint, str):
        raise CheckpointError(
            f"{path}: not a run manifest (a JSON object with {VOCABULARY_KEY!r}); restore it, or "
            "delete it to load the run without checking its vocabulary"
        )
    return fingerprint


def _last_written(run: Path) -> float:
    """When the run last wrote a file (its folder's own mtime misses in-place rewrites)."""
    return max(p.stat().st_mtime for p in run.iterdir())


def load_model(
    run: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str] = "checkpoints",
    which: str = BEST_FILE,
    device: str | torch.device = "cpu",
) -> tuple[MultimodalModel, ProductionTokenizer, Config]:
    """A ready model (eval mode), its tokenizer and config from a run folder, name or `latest`,
    on `device` (a name `mmlib.config.resolve_device` accepts)."""
    device = resolve_device(device)
    run_dir = resolve_run(run, checkpoint_dir)
    config = Config.load(run_dir / CONFIG_FILE)
    tokenizer = load_run_tokenizer(run_dir)
    model = MultimodalModel(config, len(tokenizer))
    state = load_checkpoint(run_dir / which)
    load_weights(model, state.get("model", state), run_dir / which)  # best.pt or last.pt
    return model.to(device).eval(), tokenizer, config
