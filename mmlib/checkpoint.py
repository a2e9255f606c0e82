"""Run folders: atomic saves, weights-only loading, and finding a run by path, name or `latest`.

A run folder `checkpoints/<run>/` holds `config.json`, `tokenizer.json`, `manifest.json` (the
fingerprint of the vocabulary the weights were trained with), `history.csv`, `steps.csv`,
`epoch_NNN.pt` (the last few), `last.pt` (full training state) and `best.pt` (the model's
`state_dict` alone, so `model.load_state_dict(torch.load(path))` loads it). Training writes
through this module; inference, analysis and the course read through it, without importing the
trainer.
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
from mmlib.data.tokenizer import Tokenizer, load_tokenizer
from mmlib.files import atomic_write_bytes, atomic_write_text, read_json
from mmlib.model.multimodal import MultimodalModel

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
HISTORY_FILE = "history.csv"
STEPS_FILE = "steps.csv"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
VOCABULARY_KEY = "vocabulary_sha256"  # in the manifest: `Tokenizer.fingerprint()`, either kind
RETRAIN = "train the run again (python -m mmlib train)"
RUN_CONFIG_REMEDY = f"put back the run's own {CONFIG_FILE}, or {RETRAIN}"


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


def save_run_tokenizer(tokenizer: Tokenizer, run_dir: str | os.PathLike[str]) -> None:
    """Write `tokenizer.json`, then the fingerprint of its vocabulary in `manifest.json`, which
    every load of the run's weights checks (`best.pt` stays a bare `state_dict`)."""
    run_dir = Path(run_dir)
    tokenizer.save(run_dir / TOKENIZER_FILE)
    record_vocabulary(tokenizer, run_dir)


def record_vocabulary(tokenizer: Tokenizer, run_dir: str | os.PathLike[str]) -> Path:
    """Write `manifest.json`: the fingerprint of `tokenizer`'s vocabulary, as the run's own."""
    manifest = {VOCABULARY_KEY: tokenizer.fingerprint()}
    return atomic_write_text(Path(run_dir) / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def load_run_tokenizer(
    run_dir: str | os.PathLike[str], *, check_vocabulary: bool = True
) -> Tokenizer:
    """The run's `tokenizer.json`, refused when its vocabulary is not the one `manifest.json`
    records for the weights (they would write garbled captions with it), or when there is no
    manifest to check it against (`python -m mmlib trust-vocabulary RUN` records one after
    showing captions). `check_vocabulary=False` skips the check: for that command only."""
    run_dir = Path(run_dir)
    tokenizer = load_tokenizer(run_dir / TOKENIZER_FILE)
    if not check_vocabulary:
        return tokenizer
    recorded = _recorded_fingerprint(run_dir / MANIFEST_FILE)
    if recorded is None:
        raise CheckpointError(
            f"{run_dir / MANIFEST_FILE}: not found, so {TOKENIZER_FILE} cannot be checked against "
            "the weights (a run written before vocabulary fingerprints, or the file was deleted); "
            f"run `python -m mmlib trust-vocabulary {run_dir}`, look at the captions it prints, "
            "and it records the vocabulary"
        )
    if recorded != tokenizer.fingerprint():
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
    remedy = (
        f"restore it, or delete it and record the vocabulary with "
        f"`python -m mmlib trust-vocabulary {path.parent}`"
    )
    manifest = read_json(path, remedy, CheckpointError)
    fingerprint = manifest.get(VOCABULARY_KEY) if isinstance(manifest, dict) else None
    if not isinstance(fingerprint, str):
        raise CheckpointError(
            f"{path}: not a run manifest (a JSON object with {VOCABULARY_KEY!r}); {remedy}"
        )
    return fingerprint


def load_run_config(run_dir: str | os.PathLike[str]) -> Config:
    """The run's `config.json`, validated; errors name the file, the field and what to do."""
    return Config.load(Path(run_dir) / CONFIG_FILE, RUN_CONFIG_REMEDY)


def model_state(
    loaded: Any, source: str | os.PathLike[str], remedy: str = ""
) -> dict[str, torch.Tensor]:
    """The model weights of a loaded checkpoint: `best.pt`'s bare `state_dict`, or the `model`
    entry of `last.pt` and `epoch_NNN.pt`; anything else is a CheckpointError naming `source`
    and ending with `remedy` (by default: another checkpoint of the run, or retraining)."""
    remedy = remedy or _WEIGHTS_REMEDY
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else loaded
    where = f"{source}: 'model'" if isinstance(loaded, dict) and "model" in loaded else source
    if not isinstance(state, dict) or not state:
        found = "an empty dict" if isinstance(state, dict) else _described(state)
        raise CheckpointError(
            f"{where} holds {found}, not model weights (a dict of parameter names to tensors); "
            f"{remedy}"
        )
    wrong = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if wrong or not all(isinstance(key, str) for key in state):
        raise CheckpointError(
            f"{where}: {wrong[0] if wrong else 'a key'!r} is not a named tensor, so these are not "
            f"model weights; {remedy}"
        )
    return state


def _described(value: Any) -> str:
    """A short description of a value found where another was expected: `a list`, `5`."""
    if isinstance(value, bool | int | float | str) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"


_WEIGHTS_REMEDY = f"use another checkpoint of the run (last.pt, best.pt, epoch_NNN.pt) or {RETRAIN}"
# The entries of last.pt (`mmlib.training.Trainer`) and of the position it holds within an epoch,
# with the types a resume needs (`total_steps` is absent from files written before it was saved).
TRAINING_STATE = {
    "optimizer": dict,
    "scheduler": dict,
    "scaler": dict,
    "epoch": int,
    "global_step": int,
    "best_val": float,
    "epochs_without_improvement": int,
    "history": list,
    "steps": list,
    "rng_cpu": torch.Tensor,
    "rng_cuda": list,
}
POSITION = {"epoch": int, "batches_done": int, "sums": torch.Tensor, "samples": int, "skipped": int}
# Entries of the position that files written before them lack.
OPTIONAL_POSITION = {"batch_size": int}


def check_training_state(state: Any, source: str | os.PathLike[str]) -> dict[str, Any]:
    """`state` (a loaded `last.pt`) if it holds every entry a resume reads, with its type;
    otherwise a CheckpointError naming `source`, the entry and what to do."""
    remedy = (
        f"delete {source} to start the run again from the beginning (--resume then restarts it), "
        f"or {RETRAIN}"
    )
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} holds {_described(state)}, not a training state; {remedy}")
    model_state(state.get("model"), f"{source}: 'model'")
    _check_entries(state, TRAINING_STATE, str(source), remedy)
    if state.get("total_steps") is not None:
        _check_entries(state, {"total_steps": int}, str(source), remedy)
    position = state.get("position")
    if position is not None:
        where = f"{source}: 'position'"
        if not isinstance(position, dict):
            raise CheckpointError(f"{where} holds {_described(position)}, not a dict; {remedy}")
        _check_entries(position, POSITION, where, remedy)
        optional = {key: kind for key, kind in OPTIONAL_POSITION.items() if key in position}
        _check_entries(position, optional, where, remedy)
        unknown = sorted(set(position) - set(POSITION) - set(OPTIONAL_POSITION))
        if unknown:
            raise CheckpointError(f"{where}: unknown entry {unknown[0]!r}; {remedy}")
    return state


def _check_entries(
    state: dict[str, Any], expected: Mapping[str, type], where: str, remedy: str
) -> None:
    """Every key of `expected` is in `state` with that type (an int where a float is asked)."""
    for key, kind in expected.items():
        if key not in state:
            raise CheckpointError(f"{where}: no {key!r} entry; {remedy}")
        value = state[key]
        allowed = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise CheckpointError(
                f"{where}: {key!r} is {_described(value)}, expected {_KINDS[kind]}; {remedy}"
            )
        if kind is int and isinstance(value, int) and value < 0:
            raise CheckpointError(f"{where}: {key!r} is {value}, expected >= 0; {remedy}")


_KINDS = {
    dict: "a dict",
    list: "a list",
    int: "an integer",
    float: "a number",
    torch.Tensor: "a tensor",
}


def _last_written(run: Path) -> float:
    """When the run last wrote a file (its folder's own mtime misses in-place rewrites)."""
    return max(p.stat().st_mtime for p in run.iterdir())


def load_model(
    run: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str] = "checkpoints",
    which: str = BEST_FILE,
    device: str | torch.device = "cpu",
    *,
    check_vocabulary: bool = True,
) -> tuple[MultimodalModel, Tokenizer, Config]:
    """A ready model (eval mode), its tokenizer and config from a run folder, name or `latest`,
    on `device` (a name `mmlib.config.resolve_device` accepts). `check_vocabulary`: see
    `load_run_tokenizer`."""
    device = resolve_device(device)
    run_dir = resolve_run(run, checkpoint_dir)
    config = load_run_config(run_dir)
    tokenizer = load_run_tokenizer(run_dir, check_vocabulary=check_vocabulary)
    model = MultimodalModel(config, len(tokenizer))
    state = model_state(load_checkpoint(run_dir / which), run_dir / which)
    load_weights(model, state, run_dir / which)
    return model.to(device).eval(), tokenizer, config
