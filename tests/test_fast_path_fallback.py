"""The GPU fast path is safe to be on (issue 22): torch.compile, fused AdamW and bf16 each fall
back, with one line, where the device lacks them; all checked on the CPU by making them fail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from conftest import TINY_MODEL

import mmlib.config
from mmlib.config import Config, supports_bf16
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import StepResult, TrainingStep, make_optimizer
from mmlib.sizing.memory import estimate_memory, sample_batch
from mmlib.training.trainer import Trainer

VOCAB = 40
COMPILE_LINE = "torch.compile failed at the first training step"


def _setup(device_type: str = "cpu") -> tuple[Config, MultimodalModel, torch.optim.Optimizer]:
    config = Config(**{**TINY_MODEL, "precision": "fp32", "dropout": 0.1})  # dropout draws
    torch.manual_seed(0)
    model = MultimodalModel(config, VOCAB)
    return config, model, make_optimizer(model, config, device_type)


def _micro_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    config = Config(**TINY_MODEL)
    torch.manual_seed(1)
    return [sample_batch(config, 4, VOCAB), sample_batch(config, 4, VOCAB)]


def _eager_run(steps: int) -> tuple[list[StepResult], MultimodalModel]:
    """`steps` steps of the fast step without compile: what a fallen-back step must equal."""
    config, model, optimizer = _setup()
    step = TrainingStep(model, optimizer, config, "fp32", fast=True, compiled=False)
    torch.manual_seed(2)
    return [step(_micro_batches()) for _ in range(steps)], model


def _compile_failing_at(calls: set[int], error: Exception) -> Callable[..., Any]:
    """A stand-in for torch.compile whose compiled forward raises `error` at the given calls
    (counted from 0) and runs the module eagerly at the others, as a compile that fails at the
    second micro-batch would (gradients of the first already accumulated)."""

    def compile_(module: torch.nn.Module) -> Callable[..., Any]:
        count = iter(range(10**6))

        def compiled(*args: Any) -> Any:
            if next(count) in calls:
                raise error
            return module(*args)

        return compiled

    return compile_


def _backend_compiler_failed(message: str) -> Exception:
    """Dynamo's error for a failed backend (its constructor's arguments vary between versions)."""
    error = torch._dynamo.exc.BackendCompilerFailed.__new__(torch._dynamo.exc.BackendCompilerFailed)
    Exception.__init__(error, message)
    return error


def _assert_same(results: list[StepResult], model: MultimodalModel, steps: int) -> None:
    expected, eager_model = _eager_run(steps)
    for result, wanted in zip(results, expected, strict=True):
        torch.testing.assert_close(result.sums, wanted.sums, rtol=0, atol=0)
    for parameter, wanted in zip(model.parameters(), eager_model.parameters(), strict=True):
        torch.testing.assert_close(parameter, wanted, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("failing_call", "error"),
    [
        (0, RuntimeError("Triton Error [CUDA]: invalid device context\nmore detail")),
        (1, _backend_compiler_failed("backend='inductor' raised:\nRuntimeError: no ptxas")),
    ],
)
def test_a_compile_failing_at_the_first_step_falls_back_to_the_same_eager_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failing_call, error
) -> None:
    monkeypatch.setattr(torch, "compile", _compile_failing_at({failing_call}, error))
    config, model, optimizer = _setup()
    step = TrainingStep(model, optimizer, config, "fp32", fast=True)
    torch.manual_seed(2)
    results = [step(_micro_batches()) for _ in range(2)]
    assert step.forward is model
    _assert_same(results, model, steps=2)  # same losses, same weights, batch not skipped
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(COMPILE_LINE)
    assert type(error).__name__ in lines[0] and "--set fast_path=off" in lines[0]
    assert "more detail" not in lines[0]  # the reason is the message's first line


def test_a_compile_failing_after_its_first_step_is_a_real_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch, "compile", _compile_failing_at({2}, RuntimeError("late")))
    config, model, optimizer = _setup()
    step = TrainingStep(model, optimizer, config, "fp32", fast=True)
    step(_micro_batches())
    with pytest.raises(RuntimeError, match="late"):
        step(_micro_batches())
    assert capsys.readouterr().err == ""


def test_running_out_of_memory_at_the_first_compiled_step_is_not_a_compile_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out_of_memory = torch.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(torch, "compile", _compile_failing_at({0}, out_of_memory))
    config, model, optimizer = _setup()
    with pytest.raises(torch.OutOfMemoryError):
        TrainingStep(model, optimizer, config, "fp32", fast=True)(_micro_batches())
    assert capsys.readouterr().err == ""


def test_fused_adamw_refused_when_built_is_the_default_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class NoFusedAdamW(torch.optim.AdamW):
        def __init__(self, *args: Any, fused: bool | None = None, **kwargs: Any) -> None:
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be floating point")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", NoFusedAdamW)
    _, _, optimizer = _setup("cuda")
    assert not optimizer.defaults["fused"]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fused AdamW refused (RuntimeError: `fused")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_fused_adamw_failing_at_its_first_step_steps_as_the_default_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], precision: str
) -> None:
    # fp16 runs GradScaler, which hands a fused AdamW its scale: the fallback must undo that.
    stepped = []
    for device_type in ("cpu", "cuda"):  # "cuda": fused AdamW, here on the CPU's parameters
        config, model, optimizer = _setup(device_type)
        scaler = torch.amp.GradScaler("cpu", enabled=precision == "fp16")
        step = TrainingStep(model, optimizer, config, precision, scaler=scaler)
        if device_type == "cuda":
            assert optimizer.defaults["fused"]
            monkeypatch.setattr(torch, "_fused_adamw_", _raise(RuntimeError("no kernel image")))
        torch.manual_seed(2)
        results = [step(_micro_batches()) for _ in range(2)]
        assert all(result.finite for result in results)
        stepped.append([p.detach().clone() for p in model.parameters()])
    assert not optimizer.defaults["fused"]
    for fallen_back, plain in zip(*stepped, strict=True):
        torch.testing.assert_close(fallen_back, plain, rtol=0, atol=0)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "fused AdamW failed (RuntimeError: no kernel image); using AdamW's default one"
    ]


def _raise(error: Exception) -> Callable[..., None]:
    def fail(*_: Any, **__: Any) -> None:
        raise error

    return fail


def test_supports_bf16_asks_the_card_for_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, Any]] = []

    def is_bf16_supported(**kwargs: Any) -> bool:
        asked.append(kwargs)
        return False

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert not supports_bf16("cuda") and supports_bf16("cpu")
    assert asked == [{"including_emulation": False}]  # a V100 emulates bf16: not native
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert supports_bf16(torch.device("cuda"))  # an estimate for a card: every listed one has it


def test_bf16_on_a_card_without_it_is_fp16_for_training_and_the_estimate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mmlib.config, "supports_bf16", lambda device: False)
    for config in (Config(), Config(precision="bf16")):
        assert config.resolve_precision("cuda") == "fp16"
    assert Config(precision="fp32").resolve_precision("cuda") == "fp32"
    tiny = Config(**TINY_MODEL)
    assert estimate_memory(tiny, 2, device_type="cuda", vocab_size=VOCAB).precision == "fp16"


def test_the_trainer_says_in_one_line_when_bf16_falls_back_to_fp16(
    monkeypatch: pytest.MonkeyPatch, tiny_config
) -> None:
    lines: list[str] = []
    monkeypatch.setattr(mmlib.config, "supports_bf16", lambda device: False)
    trainer = Trainer(tiny_config(precision="bf16"), progress=False, log=lines.append)
    assert trainer.precision == "fp16"
    assert lines == [
        "precision: this GPU has no native bf16; training in fp16 with loss scaling "
        "(--set precision=fp32 trains in fp32)"
    ]
    lines.clear()
    monkeypatch.setattr(mmlib.config, "supports_bf16", lambda device: True)
    assert Trainer(tiny_config(precision="bf16"), progress=False, log=lines.append).precision == (
        "bf16"
    )
    assert lines == []
