"""Tests for mmlib.training.lr_find: the learning-rate range test."""

from __future__ import annotations

import math

import pytest
import torch

from mmlib.training.lr_find import LRFindResult, lr_find, suggest_lr
from mmlib.training.trainer import Trainer


def test_range_test_is_exponential_and_leaves_the_trainer_as_it_was(tiny_config, tmp_path) -> None:
    config = tiny_config(run_name="lr-find")
    trainer = Trainer(config, log=lambda _line: None, progress=False)
    trainer.prepare()
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    lrs_before = [group["lr"] for group in trainer.optimizer.param_groups]
    rng = torch.get_rng_state()

    result = lr_find(config, start_lr=1e-5, end_lr=1e-2, num_steps=12, trainer=trainer)

    assert isinstance(result, LRFindResult) and not result.diverged
    assert result.steps == len(result.learning_rates) == 12
    assert result.learning_rates[0] == pytest.approx(1e-5)
    assert result.learning_rates[-1] == pytest.approx(1e-2)
    ratios = [b / a for a, b in zip(result.learning_rates, result.learning_rates[1:], strict=False)]
    assert ratios == pytest.approx([10 ** (3 / 11)] * 11)
    assert len(result.losses) == len(result.smoothed) == len(result.learning_rates)
    assert all(math.isfinite(loss) for loss in result.losses)
    # Bias-corrected smoothing starts at the first loss, not near zero.
    assert result.smoothed[0] == pytest.approx(result.losses[0])
    assert 1e-5 <= result.suggested_lr <= 1e-2
    assert result.seconds > 0
    # The model, the optimizer and the random state are as before; no files but prepare's.
    after = trainer.model.state_dict()
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    assert [group["lr"] for group in trainer.optimizer.param_groups] == lrs_before
    assert not trainer.optimizer.state
    assert torch.equal(torch.get_rng_state(), rng)
    run = tmp_path / "checkpoints" / "lr-find"
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json",
        "manifest.json",
        "tokenizer.json",
    ]


def test_a_huge_end_lr_stops_early_on_divergence(tiny_config) -> None:
    result = lr_find(tiny_config(), start_lr=1e-3, end_lr=1e5, num_steps=80)
    assert result.diverged and result.steps < 80
    assert 1e-3 <= result.suggested_lr <= 1e5
    # The suggestion lies well below where the loss blew up.
    assert result.suggested_lr < result.learning_rates[-1]


def test_deterministic_under_a_seed(tiny_config) -> None:
    first = lr_find(tiny_config(seed=3), num_steps=8)
    second = lr_find(tiny_config(seed=3), num_steps=8)
    assert first.losses == second.losses and first.suggested_lr == second.suggested_lr


def test_suggestion_is_the_steepest_descent_before_the_minimum() -> None:
    lrs = [10.0**e for e in range(-6, 1)]  # 1e-6 .. 1
    smoothed = [5.0, 4.9, 4.8, 3.0, 1.2, 1.1, 9.0]  # steepest fall (central difference) at 1e-3
    assert suggest_lr(lrs, smoothed, 1e-6, 1.0) == pytest.approx(1e-3)


def test_suggestion_falls_back_to_the_minimum_over_ten() -> None:
    lrs = [10.0**e for e in range(-6, 1)]
    # Too short before the minimum (at 1e-5): 1e-6, kept within [start_lr, end_lr].
    assert suggest_lr(lrs, [3.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0], 1e-6, 1.0) == pytest.approx(1e-6)
    # Flat (a fall of 0.5 % before the minimum at 1e-2): 1e-3.
    flat = [2.0, 2.0, 1.995, 1.995, 1.99, 9.0, 9.0]
    assert suggest_lr(lrs, flat, 1e-6, 1.0) == pytest.approx(1e-3)
    assert suggest_lr([], [], 1e-6, 1.0) == 1e-6


def test_outcome_describes_the_raw_curve_not_only_the_stop_rule() -> None:
    lrs = [1e-6 * 10 ** (i / 2) for i in range(13)]  # 1e-6 .. 1
    # The notebook's case: the raw loss jumps from about 7 to 78 while the smoothed loss stays
    # under the stop rule; "no divergence" alone hid it.
    raw = [15.0, 14.0, 12.0, 10.0, 8.0, 7.0, 7.2, 6.9, 12.0, 25.0, 15.0, 78.0, 71.0]
    jumped = LRFindResult(lrs, raw, raw, 1e-3, 13, 2.0, False).outcome()
    assert "rose 11x, from 6.9 at lr 0.0032 to 78 at lr 0.32" in jumped
    assert "stayed under the stop rule, so the test ran all steps" in jumped
    stopped = LRFindResult(lrs[:10], raw[:10], raw[:10], 1e-3, 11, 2.0, True).outcome()
    assert stopped.endswith("stopped on divergence after 11 steps") and "rose 4x" in stopped
    noisy = [5.0, 4.0, 3.0, 5.4]  # a rise of 1.8x: batch noise, not a blow-up
    calm = LRFindResult(lrs[:4], noisy, noisy, 1e-5, 4, 1.0, False).outcome()
    assert calm == "ran all steps; the raw loss stayed within 1.8x of its minimum 3"
    nothing = LRFindResult([], [], [], 1e-6, 1, 0.1, True).outcome()
    assert nothing == "stopped on divergence after 1 steps; no finite loss recorded"


@pytest.mark.parametrize(
    "arguments",
    [
        {"start_lr": 1.0, "end_lr": 0.1},
        {"num_steps": 1},
        {"smoothing": 1.0},
        {"divergence_factor": 1.0},
    ],
)
def test_bad_arguments_are_refused(tiny_config, arguments) -> None:
    with pytest.raises(ValueError):
        lr_find(tiny_config(), **arguments)
