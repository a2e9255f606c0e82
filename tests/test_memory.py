"""Tests for mmlib.memory: the estimate against the profiler, the table, the batch-size search."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import TINY_MODEL

from mmlib import memory
from mmlib.config import Config, ConfigError
from mmlib.memory import (
    ESTIMATE_TOLERANCE,
    GIB,
    NOT_MEASURED,
    SEED_GUESSED_GB,
    BatchSizeRow,
    accumulation_for,
    batch_size_table,
    estimate_memory,
    estimate_table,
    find_max_batch_size,
    format_batch_size_table,
    format_guess_comparison,
    gpu_memory,
    measure_memory,
    recommend_batch_size,
    resolve_batch_size,
    resolve_precision,
    scaled_learning_rate,
)
from mmlib.model import MultimodalModel
from mmlib.train import Trainer, TrainingError

SMALL_VOCAB = 50


def tiny(**overrides: Any) -> Config:
    """A model small enough that a real step takes milliseconds."""
    return Config(**{**TINY_MODEL, "use_amp": False, **overrides})


# The CPU accuracy claim: base at batch 8 only, to keep the test short (the bench runs all).
@pytest.mark.parametrize(
    ("preset", "batch_size"), [("cpu-tiny", 8), ("cpu-tiny", 16), ("cpu-tiny", 32), ("base", 8)]
)
def test_estimate_is_within_tolerance_of_the_profiler_peak(preset: str, batch_size: int) -> None:
    config = Config.preset(preset)
    estimate = estimate_memory(config, batch_size, "fp32", device_type="cpu")
    measured = measure_memory(config, batch_size, "cpu", "fp32")
    assert estimate.gpu_terms == () and estimate.total == estimate.allocated
    ratio = estimate.allocated / measured.peak_allocated
    assert abs(ratio - 1) <= ESTIMATE_TOLERANCE, f"{preset} x{batch_size}: ratio {ratio:.3f}"


def test_measure_memory_reports_the_profiler_peak_on_cpu() -> None:
    measured = measure_memory(tiny(), 4, "cpu", vocab_size=SMALL_VOCAB)
    assert measured.peak_allocated > 0 and measured.peak_reserved is None
    assert measured.device == "cpu" and measured.precision == "fp32"
    assert "torch.profiler" in measured.method and measured.samples_per_second > 0


def test_estimate_breakdown_sums_and_counts_weights_and_adamw_exactly() -> None:
    config = tiny()
    estimate = estimate_memory(config, 4, "fp32", "cpu", vocab_size=SMALL_VOCAB)
    params = list(MultimodalModel(config, SMALL_VOCAB).parameters())
    weight_bytes = sum(p.numel() * 4 for p in params)
    assert estimate.weights == weight_bytes
    # exp_avg and exp_avg_sq per parameter, plus AdamW's fp32 step counter.
    assert estimate.optimizer_state == 2 * weight_bytes + 4 * len(params)
    parts = [t.bytes for t in estimate.breakdown()]
    assert sum(parts) == estimate.allocated == estimate.total
    assert estimate.activations > 0 and estimate.autocast_copies == 0
    assert (estimate.batch_size, estimate.vocab_size, estimate.device_type) == (4, 50, "cpu")


def test_estimate_grows_with_the_batch_and_is_deterministic() -> None:
    config = tiny()
    small, again, large = (
        estimate_memory(config, b, "fp32", vocab_size=SMALL_VOCAB) for b in (4, 4, 32)
    )
    assert small == again
    assert large.activations > small.activations and large.total > small.total


def test_gpu_terms_are_listed_with_sources_and_not_claimed_measured() -> None:
    estimate = estimate_memory(tiny(), 4, "bf16", "cuda", vocab_size=SMALL_VOCAB)
    names = [t.name for t in estimate.gpu_terms]
    assert names == ["cuda_context", "allocator_rounding", "cudnn_workspace"]
    assert all(NOT_MEASURED in t.source for t in estimate.gpu_terms)
    assert estimate.total == estimate.allocated + sum(t.bytes for t in estimate.gpu_terms)
    assert estimate.autocast_copies > 0
    assert "autocast_copies" in [t.name for t in estimate.breakdown()]
    with pytest.raises(ValueError, match="batch_size=0"):
        estimate_memory(tiny(), 0)


def test_resolve_precision() -> None:
    amp = Config(use_amp=True)
    assert resolve_precision(amp, None, "cuda") == "bf16"
    assert resolve_precision(amp, None, "cpu") == "fp32"
    assert resolve_precision(Config(precision="fp16"), None, "cuda") == "fp16"
    assert resolve_precision(amp, "fp32", "cuda") == "fp32"
    with pytest.raises(ConfigError, match="fp64"):
        resolve_precision(amp, "fp64", "cuda")


def test_gpu_memory_names_and_sizes() -> None:
    assert gpu_memory("h100") == ("h100", 80 * GIB)
    assert gpu_memory("RTX3090") == ("rtx3090", 24 * GIB)
    assert gpu_memory("h200")[1] == 141 * GIB
    assert gpu_memory("48") == ("48 GB", 48 * GIB)
    assert gpu_memory("12GB")[1] == 12 * GIB and gpu_memory(16)[1] == 16 * GIB
    with pytest.raises(ValueError, match="rtx3090, a100-40, a100-80, h100, h200"):
        gpu_memory("titan")
    with pytest.raises(ValueError, match="positive"):
        gpu_memory("0")


def test_batch_size_table_fits_and_formats() -> None:
    config = tiny(vocab_size=SMALL_VOCAB)
    rows = batch_size_table(config, (2, 64), gpu=0.6, precision="fp32")
    assert [r.batch_size for r in rows] == [2, 64]
    assert all(r.measurement is None and r.gpu == "0.6 GB" for r in rows)
    assert [r.fits for r in rows] == [r.estimate.total <= 0.9 * r.gpu_bytes for r in rows]
    text = format_batch_size_table(rows)
    assert "fits" in text and f"GPU-only terms, {NOT_MEASURED}:" in text and "cuda_context" in text
    with pytest.raises(ValueError, match="device"):
        batch_size_table(config, (2,), measure=True)


def test_batch_size_table_measures_on_a_device() -> None:
    rows = batch_size_table(tiny(vocab_size=SMALL_VOCAB), (4,), measure=True, device="cpu")
    row = rows[0]
    assert row.measurement is not None and row.estimate.device_type == "cpu"
    assert row.estimate.gpu_terms == ()
    text = format_batch_size_table(rows)
    assert "measured on cpu" in text and "GPU-only" not in text.splitlines()[-1]


def _affine_estimates(monkeypatch: pytest.MonkeyPatch, base: int, per_sample: int) -> list[int]:
    """Replace the estimator with total = base + per_sample x batch; returns the batches asked."""
    asked: list[int] = []

    def fake(config: Config, batch_size: int, *args: Any, **kwargs: Any) -> SimpleNamespace:
        asked.append(batch_size)
        return SimpleNamespace(total=base + per_sample * batch_size)

    monkeypatch.setattr(memory, "estimate_memory", fake)
    return asked


def test_recommend_batch_size_is_the_largest_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _affine_estimates(monkeypatch, base=2 * GIB, per_sample=100 * 2**20)
    best = recommend_batch_size(Config(), 24, headroom=0.1)
    budget = 0.9 * 24 * GIB
    assert 2 * GIB + 100 * 2**20 * best <= budget < 2 * GIB + 100 * 2**20 * (best + 1)
    assert len(asked) < 10  # secant steps on an affine total, not a bisection from 1
    assert recommend_batch_size(Config(), 1000, max_batch=256) == 256
    with pytest.raises(ValueError, match="even batch_size=1"):
        recommend_batch_size(Config(), 2)
    with pytest.raises(ValueError, match="headroom"):
        recommend_batch_size(Config(), 24, headroom=1.0)


def test_find_max_batch_size_bisects_below_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    limit, tried = 37, []

    def step(model: Any, optimizer: Any, images: torch.Tensor, *args: Any) -> None:
        tried.append(images.shape[0])
        if images.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(memory, "training_step", step)
    config = tiny(vocab_size=SMALL_VOCAB)
    assert find_max_batch_size(config, "cpu", start=4, margin=1.0) == limit
    assert find_max_batch_size(config, "cpu", start=4) == int(limit * memory.SAFETY_MARGIN)
    assert 64 in tried and 38 in tried  # doubled past the limit, then bisected to it
    with pytest.raises(ValueError, match="batch_size=40 already runs out of memory"):
        find_max_batch_size(config, "cpu", start=40)


def test_batch_size_auto_in_config_and_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config.preset("cpu-tiny", batch_size="auto")
    assert config.with_overrides({"batch_size": "24"}).batch_size == 24
    with pytest.raises(ConfigError, match='an integer or "auto"'):
        config.with_overrides({"batch_size": "big"})
    assert resolve_batch_size(config, torch.device("cpu")) == 64  # the preset's
    assert resolve_batch_size(Config(batch_size=12), torch.device("cpu")) == 12
    monkeypatch.setattr(memory, "find_max_batch_size", lambda *args, **kwargs: 48)
    assert resolve_batch_size(config, torch.device("cuda"), processes=2) == 96


def test_trainer_resolves_auto_batch_size(tiny_config) -> None:
    trainer = Trainer(tiny_config(batch_size="auto"), progress=False)
    assert trainer.config.batch_size == Config().batch_size  # custom config: the default


def test_out_of_memory_in_training_names_the_batch_that_fits(
    tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "device_memory_gb", lambda device: 24.0)
    monkeypatch.setattr(memory, "recommend_batch_size", lambda *args, **kwargs: 5)

    def out_of_memory(self: Trainer) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(Trainer, "_run_epoch", out_of_memory)
    with pytest.raises(TrainingError) as raised:
        Trainer(tiny_config(batch_size=16, grad_accum_steps=1), progress=False).fit()
    message = str(raised.value)
    assert "out of memory at batch_size=16" in message
    assert "batch_size=5 fits" in message  # 16 = 4 x 4 keeps the effective batch exactly
    assert "set batch_size=4 and grad_accum_steps=4" in message


def test_out_of_memory_when_the_estimate_says_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "device_memory_gb", lambda device: 80.0)
    monkeypatch.setattr(memory, "recommend_batch_size", lambda *args, **kwargs: 50)
    config = Config(batch_size=16, grad_accum_steps=2)
    message = memory.out_of_memory_message(config, torch.device("cuda"))
    assert "though the estimate says batch_size=50 fits" in message
    assert "batch_size=8 and grad_accum_steps=4" in message


def test_device_memory_gb_on_cpu_is_the_machine_memory() -> None:
    memory_gb = memory.device_memory_gb(torch.device("cpu"))
    assert memory_gb is None or memory_gb > 0


def test_estimate_table_is_exact_at_its_sizes_and_interpolates_between() -> None:
    config = tiny(vocab_size=SMALL_VOCAB)
    table = estimate_table(config, "bf16", batch_sizes=(64, 8, 1))
    assert table.batch_sizes == (1, 8, 64)
    assert table(8) == estimate_memory(config, 8, "bf16")
    between, exact = table(20), estimate_memory(config, 20, "bf16")
    assert between.batch_size == 20 and between.weights == exact.weights
    assert [t.name for t in between.gpu_terms] == [t.name for t in exact.gpu_terms]
    assert abs(between.total / exact.total - 1) < 1e-3  # affine in the batch past a small one
    with pytest.raises(ValueError, match="covers 1..64"):
        table(65)
    budget_gb = (between.total + 2**10) / GIB
    assert recommend_batch_size(config, budget_gb, 0, max_batch=64, estimate=table) == 20


def test_linear_scaling_rule_and_gradient_accumulation() -> None:
    assert scaled_learning_rate(1e-3, 16, 64) == pytest.approx(4e-3)
    assert scaled_learning_rate(1e-3, 16, 8) == pytest.approx(5e-4)
    assert accumulation_for(64, 16) == (16, 4) and accumulation_for(64, 20) == (16, 4)
    assert accumulation_for(8, 16) == (8, 1) and accumulation_for(10, 4) == (4, 3)
    with pytest.raises(ValueError, match="must be >= 1"):
        accumulation_for(64, 0)
    with pytest.raises(ValueError, match="must be >= 1"):
        scaled_learning_rate(1e-3, 0, 8)


def test_guess_comparison_lists_the_shared_batch_sizes() -> None:
    estimate = estimate_memory(tiny(vocab_size=SMALL_VOCAB), 8, "bf16")
    rows = [
        BatchSizeRow(b, replace(estimate, batch_size=b), None, "h100", 80 * GIB, True)
        for b in (8, 12)
    ]
    lines = format_guess_comparison(rows).splitlines()
    assert len(lines) == 2 and lines[1].split()[:3] == ["8", "12", "GB"]
    ratio = SEED_GUESSED_GB[8] / (estimate.total / GIB)
    assert lines[1].endswith(f"{ratio:.1f}x")
