"""Tests for mmlib.checkpoint: checkpoints, weights-only loading, run resolution."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import write_untrained_run

from mmlib.checkpoint import (
    MANIFEST_FILE,
    TOKENIZER_FILE,
    CheckpointError,
    clear_run_outputs,
    load_checkpoint,
    load_model,
    load_run_tokenizer,
    load_weights,
    resolve_run,
    save_checkpoint,
)
from mmlib.config import ConfigError
from mmlib.model.multimodal import MultimodalModel


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3}
    path = save_checkpoint(state, tmp_path / "run" / "last.pt")
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.arange(4.0))


def test_clear_run_outputs_keeps_config_and_tokenizer(tmp_path: Path) -> None:
    names = ["config.json", "tokenizer.json", "notes.txt", "best.pt", "last.pt", "epoch_004.pt"]
    names += ["imagine.pt", "history.csv", "steps.csv", "metrics.json"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = clear_run_outputs(tmp_path)
    assert len(removed) == 7
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["config.json", "notes.txt", "tokenizer.json"]


def test_loading_is_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"object": Path("x")}, path)  # an arbitrary class, not a tensor or container
    with pytest.raises(CheckpointError, match="evil.pt: the file holds code") as refused:
        load_checkpoint(path)
    assert "will not run" in str(refused.value)


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


class _RunsCode:
    """A pickle payload: unpickling it would run `exec`."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, ("raise SystemExit('the payload ran')",))


@pytest.mark.parametrize(
    ("write", "words"),
    [
        (lambda path: torch.save({"model": _RunsCode()}, path), "holds code (exec)"),
        (lambda path: path.write_bytes(pickle.dumps(_RunsCode())), "holding code"),
    ],
)
@pytest.mark.filterwarnings("error")
def test_a_malicious_checkpoint_is_refused_without_torchs_advice(tmp_path, write, words) -> None:
    path = tmp_path / "best.pt"
    write(path)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and words in message and "will not run" in message
    assert not any(advice in message for advice in ("weights_only", "safe_globals", "allowlist"))


def test_a_text_file_named_pt_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    path.write_text("hello\n")
    with pytest.raises(CheckpointError, match="best.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_a_vocabulary_that_is_not_the_weights_is_refused(tmp_path: Path) -> None:
    run = write_untrained_run(tmp_path / "run")
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    assert manifest == {"vocabulary_sha256": load_run_tokenizer(run).fingerprint()}
    payload = json.loads((run / TOKENIZER_FILE).read_text())
    payload["idx2word"] = [*payload["idx2word"][:4], *payload["idx2word"][:3:-1]]  # permuted
    (run / TOKENIZER_FILE).write_text(json.dumps(payload))
    with pytest.raises(CheckpointError) as refused:
        load_model(run)
    message = str(refused.value)
    assert str(run / TOKENIZER_FILE) in message and str(run / MANIFEST_FILE) in message
    assert "put back the run's own tokenizer.json" in message


def test_a_run_from_before_the_manifest_is_refused_until_its_vocabulary_is_trusted(
    tmp_path: Path,
) -> None:
    run = write_untrained_run(tmp_path / "run")
    (run / MANIFEST_FILE).unlink()
    with pytest.raises(CheckpointError, match="manifest.json: not found, .* trust-vocabulary"):
        load_model(run)
    model, tokenizer, _ = load_model(run, check_vocabulary=False)
    assert isinstance(model, MultimodalModel) and len(tokenizer) > 4
    (run / MANIFEST_FILE).write_text("[]")
    with pytest.raises(CheckpointError, match="manifest.json: not a run manifest"):
        load_model(run)


def test_load_model_checks_the_device_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="device='tpu': allowed values are auto, cpu, cuda"):
        load_model(tmp_path / "no-run", device="tpu")
