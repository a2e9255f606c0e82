"""Tests for what a run resolves before training (`prepare_run`), where a run is (`RunState`,
`RngState`) and its `last.pt`, the loaders (`make_run_loaders`) and `lr_find`'s random state."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mmlib.checkpoint import LAST_FILE, check_training_state, load_checkpoint
from mmlib.config import AUTO, Config
from mmlib.data.sources import load_split
from mmlib.data.tokenizer import WordTokenizer
from mmlib.sizing.batch_size import resolve_batch_size
from mmlib.training import (
    Callback,
    EpochPosition,
    PreparedRun,
    RngState,
    RunState,
    Trainer,
    TrainingError,
    lr_find,
    make_run_loaders,
    prepare_run,
)

# The entries of last.pt, in the order they are written (the format old runs resume from).
LAST_PT_ENTRIES = [
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "total_steps",
    "epoch",
    "global_step",
    "best_val",
    "epochs_without_improvement",
    "history",
    "steps",
    "rng_cpu",
    "rng_cuda",
    "position",
]


class _StopAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, step: int, losses: dict[str, float] | None) -> None:
        if step == self.step:
            trainer.request_stop()


def _quiet(_line: str) -> None:
    pass


def test_prepare_run_resolves_an_auto_batch_size_on_the_cpu(tiny_config) -> None:
    config = tiny_config(batch_size=AUTO)
    run = prepare_run(config)
    assert isinstance(run, PreparedRun)
    assert run.config.batch_size == run.batch_size
    assert run.batch_size == resolve_batch_size(config, torch.device("cpu"))
    assert run.batch_size == Config().batch_size  # a custom config: the default
    assert run.device == torch.device("cpu")
    assert (run.world_size, run.rank, run.is_main) == (1, 0, True)
    assert run.run_dir == Path(config.checkpoint_dir) / "tiny"
    assert run.resume_state is None and run.restart_note == ""
    # The Trainer takes it as it is: nothing is resolved twice.
    trainer = Trainer(run, progress=False, log=_quiet)
    assert trainer.run is run and trainer.config is run.config and trainer.device == run.device


def test_prepare_run_keeps_an_integer_batch_size(tiny_config) -> None:
    run = prepare_run(tiny_config(batch_size=12))
    assert run.batch_size == 12 and run.config.batch_size == 12


def test_prepare_run_loads_and_checks_the_resumed_state(tiny_config) -> None:
    config = tiny_config(num_epochs=1)
    Trainer(prepare_run(config), progress=False, log=_quiet).fit()
    run = prepare_run(config.with_overrides({"num_epochs": 2}), resume="tiny")
    assert run.run_dir == Path(config.checkpoint_dir) / "tiny"
    assert run.resume_state is not None
    assert list(run.resume_state) == LAST_PT_ENTRIES  # the format of last.pt is unchanged
    assert run.resume_state["epoch"] == 1 and run.resume_state["position"] is None
    assert run.restart_note == ""
    with pytest.raises(TypeError, match="prepare_run"):
        Trainer(run, resume="tiny")


def test_prepare_run_restarts_a_run_that_never_saved(tiny_config) -> None:
    config = tiny_config()
    run_dir = Path(config.checkpoint_dir) / "tiny"
    run_dir.mkdir(parents=True)
    config.save(run_dir / "config.json")
    run = prepare_run(config, resume="tiny")
    assert run.resume_state is None
    assert "was never written" in run.restart_note and str(run_dir) in run.restart_note


def test_prepare_run_refuses_another_batch_size_mid_epoch(tiny_config) -> None:
    config = tiny_config(num_epochs=1)
    Trainer(config, callbacks=[_StopAtStep(2)], progress=False, log=_quiet).fit()
    assert load_checkpoint(Path(config.checkpoint_dir) / "tiny" / LAST_FILE)["position"]
    with pytest.raises(TrainingError, match="resume it with --batch-size 16"):
        prepare_run(config.with_overrides({"batch_size": 8}), resume="tiny")
    run = prepare_run(config, resume="tiny")
    assert run.resume_state is not None
    assert run.resume_state["position"]["batches_done"] == 2


def test_rng_state_restores_the_next_draws() -> None:
    torch.manual_seed(123)
    saved = RngState.capture()
    expected = torch.rand(5)
    torch.rand(7)  # moves the generator on
    saved.restore()
    assert torch.equal(torch.rand(5), expected)


def _parts() -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return model, {"optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}


def test_run_state_round_trips_through_last_pt(tmp_path) -> None:
    model, parts = _parts()
    state = RunState(
        epoch=2,
        global_step=7,
        best_val=1.5,
        epochs_without_improvement=1,
        history=[{"epoch": 1, "val_total": 2.0}, {"epoch": 2, "val_total": 1.5}],
        steps=[{"step": 7, "epoch": 3, "total": 1.25}],
    )
    position = EpochPosition(2, 3, torch.tensor([1.0, 2.0]), 12, 0, 4)
    path = tmp_path / LAST_FILE
    state.save(path, {"model": model, **parts}, total_steps=20, position=position)
    following = torch.rand(6)  # the draws after the save: a resume's next ones

    saved = check_training_state(load_checkpoint(path), path)
    assert list(saved) == LAST_PT_ENTRIES
    assert saved["total_steps"] == 20 and saved["position"]["batch_size"] == 4

    torch.manual_seed(999)  # another random state, and other weights and optimizer state
    fresh, fresh_parts = _parts()
    with torch.no_grad():
        fresh.weight.add_(1.0)
    loaded = RunState.load(saved, path, fresh, fresh_parts, batch_size=4)
    assert torch.equal(torch.rand(6), following)
    assert (loaded.epoch, loaded.global_step, loaded.best_val) == (2, 7, 1.5)
    assert loaded.epochs_without_improvement == 1
    assert loaded.history == state.history and loaded.steps == state.steps
    assert loaded.position is not None
    assert (loaded.position.epoch, loaded.position.batches_done) == (2, 3)
    assert torch.equal(loaded.position.sums, position.sums)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters(), strict=True)
    )
    assert fresh_parts["scheduler"].last_epoch == parts["scheduler"].last_epoch


def test_a_position_without_its_batch_size_takes_the_runs() -> None:
    model, parts = _parts()
    saved = {
        "model": model.state_dict(),
        **{name: part.state_dict() for name, part in parts.items()},
        "epoch": 0,
        "global_step": 1,
        "best_val": math.inf,
        "epochs_without_improvement": 0,
        "history": [],
        "steps": [],
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": [],
        "position": {
            "epoch": 0,
            "batches_done": 1,
            "sums": torch.ones(3),
            "samples": 4,
            "skipped": 0,
        },
    }
    loaded = RunState.load(saved, Path("last.pt"), model, parts, batch_size=16)
    assert loaded.position is not None and loaded.position.batch_size == 16
    # A position saved before the chance was reported holds the losses only: the rest is 0.
    done, sums, samples, skipped = loaded.start_epoch(torch.device("cpu"))
    assert (done, samples, skipped) == (1, 4, 0)
    assert sums.tolist()[:3] == [1.0, 1.0, 1.0] and all(v == 0 for v in sums.tolist()[3:])
    assert loaded.position is None  # taken: the next epoch starts afresh
    assert loaded.start_epoch(torch.device("cpu"))[0] == 0


def test_run_state_records_epochs_and_patience() -> None:
    state = RunState()
    assert state.record_epoch({"val_total": 2.0}, 2.0)
    assert not state.record_epoch({"val_total": 3.0}, 3.0)
    assert state.epoch == 2 and state.best_val == 2.0
    assert [row["epoch"] for row in state.history] == [1, 2]
    assert state.patience_ran_out(1) and not state.patience_ran_out(2)
    assert not state.patience_ran_out(0)  # 0: never


def test_run_loaders_share_evaluation_batches_between_processes(tiny_config) -> None:
    config = tiny_config(batch_size=2)
    split = load_split(config)
    tokenizer = WordTokenizer(config.vocab_size).build_vocab(
        [caption for record in split.train for caption in record.captions]
    )
    run_dir = Path(config.checkpoint_dir) / "tiny"
    shares = [
        make_run_loaders(
            PreparedRun(config, run_dir, torch.device("cpu"), 2, rank), split, tokenizer, False
        )
        for rank in (0, 1)
    ]
    val = [list(loaders.val_loader.dataset.indices) for loaders in shares]
    assert sorted(val[0] + val[1]) == list(range(len(shares[0].val_set)))
    assert val[0][:4] == [0, 1, 4, 5] and val[1][:3] == [2, 3, 6]  # whole batches, dealt
    assert list(shares[0].train_eval_set.indices) == list(shares[1].train_eval_set.indices)
    assert len(shares[0].train_eval_set) == min(len(shares[0].val_set), len(shares[0].train_set))


def test_lr_find_leaves_the_global_random_state_as_it_found_it(tiny_config) -> None:
    trainer = Trainer(tiny_config(run_name="lr-find"), log=_quiet, progress=False)
    trainer.prepare()
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    lr_find(trainer.config, num_steps=3, trainer=trainer)
    assert torch.equal(torch.rand(4), expected)
