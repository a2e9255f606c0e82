"""Tests for mmlib.model.step: the one training step (accumulation, clipping, skips, no_sync)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from conftest import TINY_MODEL, free_port
from torch.nn.parallel import DistributedDataParallel

from mmlib.config import Config
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import TrainingStep, make_optimizer
from mmlib.sizing.memory import sample_batch

VOCAB = 40


def _setup(**overrides: Any) -> tuple[Config, MultimodalModel, torch.optim.Optimizer]:
    config = Config(**{**TINY_MODEL, "precision": "fp32", "dropout": 0.0, **overrides})
    torch.manual_seed(0)
    model = MultimodalModel(config, VOCAB)
    return config, model, make_optimizer(model, config, "cpu")


def _parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _stepped_gradients(micro_batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """The unclipped gradients the optimizer stepped on, and the step's result."""
    config, model, optimizer = _setup(gradient_clip=0.0)
    seen: list[torch.Tensor] = []
    optimizer.register_step_pre_hook(
        lambda *_: seen.extend(p.grad.clone() for p in model.parameters())
    )
    result = TrainingStep(model, optimizer, config, "fp32")(micro_batches)
    assert all(p.grad is None for p in model.parameters())
    return seen, result


def test_a_group_steps_on_the_mean_gradient_of_the_micro_batches_it_holds() -> None:
    config = Config(**TINY_MODEL)
    first, second = sample_batch(config, 4, VOCAB), sample_batch(config, 4, VOCAB)
    second = (second[0].flip(-1), second[1])
    one_a, result_a = _stepped_gradients([first])
    one_b, result_b = _stepped_gradients([second])
    both, result = _stepped_gradients([first, second])
    for a, b, mean in zip(one_a, one_b, both, strict=True):
        torch.testing.assert_close(mean, (a + b) / 2, rtol=1e-4, atol=1e-7)
    assert (result_a.samples, result.samples) == (4, 8)
    torch.testing.assert_close(result.sums, result_a.sums + result_b.sums)


def test_the_fast_step_pads_the_tokens_keeps_channels_last_and_learns_the_same() -> None:
    config = Config(**TINY_MODEL)
    images, tokens = sample_batch(config, 4, VOCAB)
    tokens = tokens[:, : config.max_caption_length // 2]  # the batch's longest caption
    results, gradients_seen = [], []
    for fast in (False, True):
        config, model, optimizer = _setup()
        step = TrainingStep(model, optimizer, config, "fp32", fast=fast, compiled=False)
        seen: list[torch.Size] = []
        model.register_forward_pre_hook(lambda _m, args, seen=seen: seen.append(args[1].shape))
        gradients: list[torch.Tensor] = []
        optimizer.register_step_pre_hook(
            lambda *_, model=model, gradients=gradients: gradients.extend(
                p.grad.clone() for p in model.parameters()
            )
        )
        results.append(step([(images, tokens)]))
        gradients_seen.append(gradients)
        convolutions = [p for p in model.parameters() if p.dim() == 4]
        layout = torch.channels_last if fast else torch.contiguous_format
        assert convolutions and all(p.is_contiguous(memory_format=layout) for p in convolutions)
        assert fast == any(not p.is_contiguous() for p in convolutions)
        assert seen == [(4, config.max_caption_length if fast else tokens.shape[1])]
    torch.testing.assert_close(results[1].sums, results[0].sums, rtol=1e-4, atol=1e-5)
    for fast_gradient, plain_gradient in zip(*gradients_seen[::-1], strict=True):
        torch.testing.assert_close(fast_gradient, plain_gradient, rtol=1e-3, atol=1e-6)


def test_a_non_finite_gradient_skips_the_step_and_clears_it() -> None:
    config, model, optimizer = _setup()
    images, tokens = sample_batch(config, 4, VOCAB)
    before = _parameters(model)
    with torch.no_grad():
        model.log_logit_scale.fill_(float("nan"))
    result = TrainingStep(model, optimizer, config, "fp32")([(images, tokens)])
    assert not result.finite and not torch.isfinite(result.grad_norm)
    changed = [
        name
        for (name, p), old in zip(model.named_parameters(), before, strict=True)
        if name != "log_logit_scale" and not torch.equal(p, old)
    ]
    assert changed == [] and optimizer.state == {}
    assert all(p.grad is None for p in model.parameters())


def test_the_scheduler_advances_once_per_step() -> None:
    config, model, optimizer = _setup()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    step = TrainingStep(model, optimizer, config, "fp32", scheduler=scheduler)
    step([sample_batch(config, 2, VOCAB)] * 2)
    assert scheduler.last_epoch == 1
    with pytest.raises(ValueError, match="at least one micro-batch"):
        step([])


def test_micro_batches_that_do_not_step_skip_the_gradient_all_reduce(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        config, model, optimizer = _setup()
        wrapped = DistributedDataParallel(model)
        entered: list[Any] = []
        no_sync = wrapped.no_sync

        def counting_no_sync() -> Any:
            entered.append(True)
            return no_sync()

        monkeypatch.setattr(wrapped, "no_sync", counting_no_sync)
        step = TrainingStep(model, optimizer, config, "fp32", forward=wrapped)
        result = step([sample_batch(config, 2, VOCAB)] * 3)
        assert len(entered) == 2 and result.finite  # the last micro-batch all-reduces
    finally:
        dist.destroy_process_group()
