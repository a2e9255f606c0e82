"""Tests for mmlib.training.trainer: the pipeline, run files, resume, stops, non-finite steps."""

from __future__ import annotations

import csv
import math
import os
import signal
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL, free_port, join_as_torchrun_process, write_bad_dataset

from mmlib.checkpoint import load_checkpoint
from mmlib.config import Config
from mmlib.data.dataset import DeviceLoader, collate_batch
from mmlib.data.readers import DatasetError, check_dataset
from mmlib.data.tokenizer import WordTokenizer
from mmlib.model.losses import compute_losses
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import REPORTED
from mmlib.training.build import warmup_cosine as _warmup_cosine
from mmlib.training.trainer import (
    HISTORY_COLUMNS,
    WALL_CLOCK_COLUMNS,
    Callback,
    Trainer,
    TrainingError,
)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def without_wall_clock(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK_COLUMNS} for row in rows]


def test_fit_prints_steps_1_to_6_and_writes_the_run(tiny_config, tmp_path) -> None:
    lines: list[str] = []
    config = tiny_config(num_epochs=2, keep_checkpoints=1)
    history = Trainer(config, log=lines.append, progress=False).fit()
    text = "\n".join(lines)
    for step in range(1, 7):
        assert f"STEP {step}:" in text
    assert "Total captions found: 70" in text
    assert "Train samples: 63\nVal samples: 7\nBatches per epoch: 3  (63 / 16)" in text
    assert "Epoch 2 Val:\n  Avg Loss:" in text and "| Img: " in text and "Epoch time:" in text
    run = tmp_path / "checkpoints" / "tiny"
    names = sorted(p.name for p in run.iterdir())
    assert names == [
        "best.pt",
        "config.json",
        "epoch_001.pt",
        "history.csv",
        "last.pt",
        "manifest.json",
        "steps.csv",
        "tokenizer.json",
    ]
    rows = read_rows(run / "history.csv")
    assert len(rows) == len(history) == 2 and tuple(rows[0]) == HISTORY_COLUMNS
    assert len(read_rows(run / "steps.csv")) == 6  # 3 batches x 2 epochs, log_interval 1
    # The loading snippet in train_production.py's notes works on best.pt: a plain state_dict.
    tokenizer = WordTokenizer().load(run / "tokenizer.json")
    model = MultimodalModel(Config.load(run / "config.json"), len(tokenizer))
    model.load_state_dict(torch.load(run / "best.pt", weights_only=True))


def test_step_1_skips_and_reports_what_data_check_does(tmp_path) -> None:
    root = write_bad_dataset(tmp_path / "a/set", ["truncated", "parent", "huge"], good=10)
    config = Config(
        **TINY_MODEL,
        data_dir=root,
        checkpoint_dir=tmp_path / "checkpoints",
        cache_dir=tmp_path / "cache",
        batch_size=4,
        num_workers=0,
        precision="fp32",
    )
    lines: list[str] = []
    trainer = Trainer(config, log=lines.append, progress=False)
    trainer.prepare()  # before the fix: an error from the image cache on img/cut.jpg
    step_1 = "\n".join(lines).split("STEP 2:")[0]
    assert check_dataset(root).problems() in step_1
    assert "truncated or corrupt image file: 1 (truncated (" in step_1
    assert len(trainer.train_set) + len(trainer.val_set) == 10


def test_train_loss_in_eval_mode_is_recorded_each_epoch(tiny_config, tmp_path) -> None:
    lines: list[str] = []
    trainer = Trainer(tiny_config(num_epochs=2), log=lines.append, progress=False)
    history = trainer.fit()
    assert "  Train (eval mode) Avg Loss: " in "\n".join(lines)
    for row in history:
        for component in ("total", "image", "caption", "alignment"):
            assert math.isfinite(row[f"train_eval_{component}"]), component
    # A fixed subset of the training set, as large as the validation set, the same each time.
    indices = trainer.train_eval_set.indices
    assert len(indices) == len(trainer.val_set) == 7 and indices == sorted(set(indices))
    again = Trainer(tiny_config(run_name="again"), log=lambda _line: None, progress=False)
    again.prepare()
    assert again.train_eval_set.indices == indices
    # In eval mode, without augmentation: the same as evaluating those samples by hand.
    trainer.model.train()
    by_hand = _eval_mode_losses(trainer, indices)
    assert trainer.validate_train() == pytest.approx(by_hand, rel=1e-5)
    assert trainer.model.training  # evaluation puts the model back in train mode
    last = history[-1]
    assert {k: last[f"train_eval_{k}"] for k in by_hand} == pytest.approx(by_hand, rel=1e-5)
    assert last["train_eval_total"] != pytest.approx(last["train_total"], rel=1e-6)


def _eval_mode_losses(trainer: Trainer, indices: list[int]) -> dict[str, float]:
    """The weighted losses of the training samples `indices` (first caption, no shift), in
    batches of `batch_size`, the model in eval mode; and the alignment's chance level, counted
    from the captions: a row with k identical captions among B costs ln B - ln k."""
    view = trainer.train_eval_set.dataset
    assert not view.train and view.max_shift == 0
    model = trainer.model.eval()
    sums, count, chance = torch.zeros(4), 0, 0.0
    size = trainer.config.batch_size
    with torch.no_grad():
        for start in range(0, len(indices), size):
            batch = collate_batch([view[i] for i in indices[start : start + size]])
            images, tokens = batch["images"], batch["tokens"]
            losses = compute_losses(model(images, tokens), images, tokens, trainer.weights)
            sums += torch.stack([v.float() for v in losses.as_dict().values()]) * len(images)
            count += len(images)
            rows = [tuple(row) for row in tokens.tolist()]
            chance += sum(math.log(len(rows)) - math.log(rows.count(row)) for row in rows)
    model.train()
    means = (sums / count).tolist()
    return {
        **dict(zip(("total", "image", "caption", "alignment"), means, strict=True)),
        "alignment_chance": chance / count,
    }


def test_training_reduces_the_loss(tiny_config, tmp_path) -> None:
    history = Trainer(tiny_config(num_epochs=3), progress=False).fit()
    assert history[-1]["train_total"] < history[0]["train_total"]


def _final_state(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt")["model"]


class StopAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, row) -> None:
        if row["epoch"] == self.epoch:
            trainer.request_stop()


class SignalAtStep(Callback):
    def __init__(self, step: int, number: int) -> None:
        self.step, self.number = step, number

    def on_step_end(self, trainer, step, losses) -> None:
        if step == self.step:
            os.kill(os.getpid(), self.number)


def _assert_same_run(straight: Path, resumed: Path) -> None:
    a, b = _final_state(straight), _final_state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert without_wall_clock(read_rows(straight / "history.csv")) == without_wall_clock(
        read_rows(resumed / "history.csv")
    )
    assert read_rows(straight / "steps.csv") == read_rows(resumed / "steps.csv")


def test_two_epochs_resume_two_epochs_equals_four_straight(tiny_config, tmp_path) -> None:
    Trainer(tiny_config(run_name="straight"), progress=False).fit()
    config = tiny_config(run_name="split")
    first = Trainer(config, callbacks=[StopAtEpoch(2)], progress=False).fit()
    assert len(first) == 2
    resumed = Trainer(config, resume="split", progress=False).fit()
    assert [row["epoch"] for row in resumed] == [1, 2, 3, 4]
    run_dir = tmp_path / "checkpoints"
    _assert_same_run(run_dir / "straight", run_dir / "split")


def test_a_fresh_run_under_an_earlier_runs_name_replaces_its_files(tiny_config, tmp_path) -> None:
    Trainer(tiny_config(num_epochs=3, keep_checkpoints=3), progress=False).fit()
    run = tmp_path / "checkpoints" / "tiny"
    (run / "metrics.json").write_text("{}")  # the earlier run's evaluation
    lines: list[str] = []
    Trainer(tiny_config(num_epochs=1, keep_checkpoints=3), log=lines.append, progress=False).fit()
    assert sorted(path.name for path in run.glob("*.pt")) == ["best.pt", "epoch_000.pt", "last.pt"]
    assert not (run / "metrics.json").exists()
    assert len(read_rows(run / "history.csv")) == 1
    assert any("held an earlier run" in line and "--resume tiny" in line for line in lines)


def test_a_fresh_run_refused_for_its_data_leaves_the_earlier_run_as_it_was(
    tiny_config, tmp_path
) -> None:
    Trainer(tiny_config(num_epochs=1), progress=False).fit()
    run = tmp_path / "checkpoints" / "tiny"
    before = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}
    missing = tmp_path / "no-such-dataset"
    with pytest.raises(DatasetError):
        Trainer(tiny_config(num_epochs=1, data_dir=missing), progress=False).fit()
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()} == before


# 63 training samples at batch 9: 7 batches per epoch, accumulated in groups of 3, 3 and 1.
ACCUMULATE = {"batch_size": 9, "grad_accum_steps": 3, "num_epochs": 2}


def test_a_partial_accumulation_at_the_end_of_an_epoch_is_stepped(tiny_config) -> None:
    trainer = Trainer(tiny_config(**ACCUMULATE), progress=False, log=lambda _line: None)
    trainer.fit()
    assert trainer.total_steps == trainer.global_step == 6
    assert all(p.grad is None for p in trainer.model.parameters())  # nothing crosses epochs


def test_resume_with_accumulation_equals_a_straight_run(tiny_config, tmp_path) -> None:
    Trainer(tiny_config(run_name="straight", **ACCUMULATE), progress=False).fit()
    config = tiny_config(run_name="split", **ACCUMULATE)
    assert len(Trainer(config, callbacks=[StopAtEpoch(1)], progress=False).fit()) == 1
    Trainer(config, resume="split", progress=False).fit()
    run_dir = tmp_path / "checkpoints"
    _assert_same_run(run_dir / "straight", run_dir / "split")


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_epoch_saves_last_and_resumes_exactly(tiny_config, tmp_path, number) -> None:
    Trainer(tiny_config(run_name="straight"), progress=False).fit()
    config = tiny_config(run_name="signalled")
    lines: list[str] = []
    handler = signal.getsignal(signal.SIGINT)  # ignored when a shell started the tests in `&`
    history = Trainer(
        config, callbacks=[SignalAtStep(5, number)], log=lines.append, progress=False
    ).fit()
    assert len(history) == 1 and "Stopped during epoch 2" in lines[-1]
    assert load_checkpoint(tmp_path / "checkpoints/signalled/last.pt")["position"] is not None
    assert signal.getsignal(signal.SIGINT) is handler  # the handler before `fit` is back
    Trainer(config, resume="latest", progress=False).fit()
    run_dir = tmp_path / "checkpoints"
    _assert_same_run(run_dir / "straight", run_dir / "signalled")


class PoisonWeights(Callback):
    def on_step_end(self, trainer, step, losses) -> None:
        if step == 2:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))


def test_non_finite_steps_are_skipped_then_stop_the_run(tiny_config, tmp_path) -> None:
    config = tiny_config(num_epochs=5)
    with pytest.warns(UserWarning, match="non-finite"):
        with pytest.raises(TrainingError, match="lower the learning rate"):
            Trainer(config, callbacks=[PoisonWeights()], progress=False).fit()
    steps = read_rows(tmp_path / "checkpoints/tiny/steps.csv")
    assert len(steps) >= 2  # the history so far stays on disk


def test_keep_checkpoints_prunes_old_epochs(tiny_config, tmp_path) -> None:
    Trainer(tiny_config(keep_checkpoints=2), progress=False).fit()
    run = tmp_path / "checkpoints" / "tiny"
    assert sorted(p.name for p in run.glob("epoch_*.pt")) == ["epoch_002.pt", "epoch_003.pt"]


def test_early_stopping(tiny_config, tmp_path, monkeypatch) -> None:
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7])
    monkeypatch.setattr(
        Trainer,
        "validate",
        lambda self: dict.fromkeys(REPORTED, next(losses)),
    )
    config = tiny_config(num_epochs=5, early_stopping_patience=2)
    history = Trainer(config, progress=False).fit()
    assert len(history) == 4


def test_resume_with_more_epochs_replans_the_cosine_over_them(tiny_config) -> None:
    config = tiny_config(num_epochs=2)  # 3 optimizer steps per epoch, 2 of warm-up
    Trainer(config, progress=False, log=lambda _line: None).fit()
    lines: list[str] = []
    longer = config.with_overrides({"num_epochs": 4})
    trainer = Trainer(longer, resume="tiny", progress=False, log=lines.append)
    trainer.prepare()
    factor = _warmup_cosine(warmup_steps=2, total_steps=12)
    # Step 7 runs at the 4-epoch schedule's rate, not at the 2-epoch schedule's end (0).
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * factor(6))
    assert "The learning-rate schedule now spans 4 epochs (12 steps, not 6)" in "\n".join(lines)
    trainer.fit()
    rates = [float(row["lr"]) for row in read_rows(trainer.run_dir / "steps.csv")]
    assert rates[6:] == pytest.approx([1e-3 * factor(step) for step in range(7, 13)])
    assert rates[5] == 0.0  # where the first 2 epochs' schedule ended


@pytest.mark.parametrize(("minutes", "saved"), [(None, [None]), (1e-6, [1, 2, None])])
def test_last_pt_is_saved_within_an_epoch_every_save_every_minutes(
    tiny_config, monkeypatch, minutes, saved
) -> None:
    positions: list[int | None] = []
    save_last = Trainer._save_last

    def recording(self: Trainer, position) -> None:
        positions.append(None if position is None else position.batches_done)
        save_last(self, position)

    monkeypatch.setattr(Trainer, "_save_last", recording)
    every = {} if minutes is None else {"save_every_minutes": minutes}
    Trainer(tiny_config(num_epochs=1, **every), progress=False, log=lambda _line: None).fit()
    assert positions == saved  # at optimizer steps, none at the epoch's last (its end saves)


def test_warmup_cosine_schedule() -> None:
    factor = _warmup_cosine(warmup_steps=4, total_steps=14)
    assert [round(factor(s), 3) for s in (0, 3)] == [0.2, 0.8]
    assert factor(4) == 1.0 and factor(9) == pytest.approx(0.5) and factor(14) == 0.0


def _distributed_worker(rank: int, world_size: int, port: int, config: Config) -> None:
    """One process of a `torchrun`-like run on CPU with gloo."""
    join_as_torchrun_process(rank, world_size, port)
    try:
        Trainer(config, progress=False, log=lambda _line: None).fit()
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_match_one_at_the_same_global_batch(tiny_config, tmp_path) -> None:
    config = tiny_config(num_epochs=2, dropout=0.0, run_name="one")
    Trainer(config, progress=False, log=lambda _line: None).fit()
    port = free_port()
    two = config.with_overrides({"run_name": "two"})
    torch.multiprocessing.spawn(_distributed_worker, args=(2, port, two), nprocs=2)
    one_dir, two_dir = tmp_path / "checkpoints/one", tmp_path / "checkpoints/two"
    for name in ("steps.csv", "history.csv"):
        one, two_rows = read_rows(one_dir / name), read_rows(two_dir / name)
        assert len(one) == len(two_rows) > 0
        for a, b in zip(without_wall_clock(one), without_wall_clock(two_rows), strict=True):
            for key in a:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4, abs=1e-6), key


def test_the_device_data_path_trains_exactly_as_the_dataloader(tiny_config, tmp_path) -> None:
    # data_on_device="on" on the CPU: the same batches through the same step, so the same run.
    runs = {}
    for choice in ("off", "on"):
        config = tiny_config(
            run_name=f"data-{choice}", num_epochs=2, augment_max_shift=2, data_on_device=choice
        )
        trainer = Trainer(config, progress=False, log=lambda _line: None)
        trainer.fit()
        assert isinstance(trainer.train_loader, DeviceLoader) == (choice == "on")
        runs[choice] = tmp_path / "checkpoints" / f"data-{choice}"
    _assert_same_run(runs["off"], runs["on"])


def test_the_trainer_takes_the_fast_path_where_config_fast_path_resolves_on(tiny_config) -> None:
    # "auto" is off on the CPU; "on" gives the step channels_last, padded tokens and compile
    # (compiled lazily: preparing does not compile).
    for choice, fast in (("auto", False), ("on", True)):
        trainer = Trainer(
            tiny_config(run_name=f"fast-{choice}", fast_path=choice),
            progress=False,
            log=lambda _line: None,
        )
        trainer.prepare()
        step = trainer.step
        assert isinstance(step.forward, torch._dynamo.eval_frame.OptimizedModule) == fast
        assert step.pad_to == (trainer.config.max_caption_length if fast else None)
        convolutions = [p for p in trainer.model.parameters() if p.dim() == 4]
        assert fast == any(not p.is_contiguous() for p in convolutions)
