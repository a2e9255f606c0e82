"""Tests for mmlib.checkpoint: checkpoints, weights-only loading, run resolution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mmlib.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    resolve_run,
    save_checkpoint,
)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3}
    path = save_checkpoint(state, tmp_path / "run" / "last.pt")
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.arange(4.0))


def test_loading_is_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"object": Path("x")}, path)  # an arbitrary class, not a tensor or container
    with pytest.raises(CheckpointError, match="evil.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_corrupt_and_missing_files_are_named(tmp_path: Path) -> None:
    path = save_checkpoint({"w": torch.ones(1000)}, tmp_path / "best.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="best.pt: not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_load_weights_names_the_mismatch() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    other = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2))
    with pytest.raises(CheckpointError, match=r"architecture.*0.weight: checkpoint \(5, 4\)"):
        load_weights(model, other.state_dict(), "best.pt")
    with pytest.raises(CheckpointError, match="1 unexpected key"):
        load_weights(model, {**model.state_dict(), "extra": torch.zeros(1)}, "best.pt")
    with pytest.raises(CheckpointError, match="2 key.s. missing"):
        load_weights(model, {"0.weight": model[0].weight, "0.bias": model[0].bias}, "best.pt")
    twin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    load_weights(twin, model.state_dict(), "best.pt")
    assert torch.equal(twin[0].weight, model[0].weight)


def _make_run(folder: Path, mtime: float) -> Path:
    folder.mkdir(parents=True)
    config = folder / "config.json"
    config.write_text("{}")
    os.utime(config, (mtime, mtime))
    return folder


def test_resolve_run_by_path_name_and_latest(tmp_path: Path) -> None:
    older = _make_run(tmp_path / "older", 1_000)
    newer = _make_run(tmp_path / "newer", 2_000)
    (tmp_path / "not-a-run").mkdir()
    assert resolve_run(older, tmp_path) == older
    assert resolve_run("newer", tmp_path) == newer
    assert resolve_run("latest", tmp_path) == newer
    with pytest.raises(CheckpointError, match="no run 'nope'"):
        resolve_run("nope", tmp_path)
    with pytest.raises(CheckpointError, match="no runs in"):
        resolve_run("latest", tmp_path / "not-a-run")
