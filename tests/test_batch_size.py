"""Tests for mmlib.sizing.batch_size: the cards, the table, recommendation, finder, advice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import TINY_MODEL

from mmlib.config import Config, ConfigError
from mmlib.sizing import batch_size
from mmlib.sizing.batch_size import (
    GUESSED_GB,
    BatchSizeRow,
    accumulation_for,
    batch_size_table,
    find_max_batch_size,
    format_batch_size_table,
    format_guess_comparison,
    gpu_memory,
    recommend_batch_size,
    resolve_batch_size,
    scaled_learning_rate,
)
from mmlib.sizing.gpu_calibration import GpuMargin, GpuMeasurement
from mmlib.sizing.memory import GIB, NOT_MEASURED, estimate_memory, estimate_table
from mmlib.training.trainer import Trainer, TrainingError

SMALL_VOCAB = 50


def tiny(**overrides: Any) -> Config:
    """A model small enough that a real step takes milliseconds."""
    return Config(**{**TINY_MODEL, "precision": "fp32", **overrides})


def test_gpu_memory_names_and_sizes() -> None:
    assert gpu_memory("h100") == ("h100", 80 * GIB)
    assert gpu_memory("RTX3090") == ("rtx3090", 24 * GIB)
    assert gpu_memory("h200")[1] == 141 * GIB
    assert gpu_memory("48") == ("48 GiB", 48 * GIB)
    assert gpu_memory("12GB")[1] == 12 * GIB and gpu_memory(16)[1] == 16 * GIB
    with pytest.raises(ValueError, match="rtx3090, a100-40, a100-80, h100, h200"):
        gpu_memory("titan")
    with pytest.raises(ValueError, match="positive"):
        gpu_memory("0")


def test_batch_size_table_fits_and_formats() -> None:
    config = tiny(vocab_size=SMALL_VOCAB)
    rows = batch_size_table(config, (2, 64), gpu=0.6, precision="fp32")
    assert [r.batch_size for r in rows] == [2, 64]
    assert all(r.measurement is None and r.gpu == "0.6 GiB" for r in rows)
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

    monkeypatch.setattr(batch_size, "estimate_memory", fake)
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

    def steps(config: Config, size: int, *args: Any) -> float:
        tried.append(size)
        if size > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return 1.0

    monkeypatch.setattr(batch_size, "run_steps", steps)
    config = tiny(vocab_size=SMALL_VOCAB)
    assert find_max_batch_size(config, "cpu", start=4, margin=1.0) == limit
    assert find_max_batch_size(config, "cpu", start=4) == int(limit * batch_size.SAFETY_MARGIN)
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
    monkeypatch.setattr(batch_size, "find_max_batch_size", lambda *args, **kwargs: 48)
    assert resolve_batch_size(config, torch.device("cuda"), processes=2) == 96


def test_trainer_resolves_auto_batch_size(tiny_config) -> None:
    trainer = Trainer(tiny_config(batch_size="auto"), progress=False)
    assert trainer.config.batch_size == Config().batch_size  # custom config: the default


def test_out_of_memory_in_training_names_the_batch_that_fits(
    tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_size, "device_memory_gb", lambda device: 24.0)
    monkeypatch.setattr(batch_size, "recommend_batch_size", lambda *args, **kwargs: 5)

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
    monkeypatch.setattr(batch_size, "device_memory_gb", lambda device: 80.0)
    monkeypatch.setattr(batch_size, "recommend_batch_size", lambda *args, **kwargs: 50)
    config = Config(batch_size=16, grad_accum_steps=2)
    message = batch_size.out_of_memory_message(config, torch.device("cuda"))
    assert "though the estimate says batch_size=50 fits" in message
    assert "batch_size=8 and grad_accum_steps=4" in message


def test_device_memory_gb_on_cpu_is_the_machine_memory() -> None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        pytest.skip("no /proc/meminfo to compare with on this system")
    total_kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
    memory_gb = batch_size.device_memory_gb(torch.device("cpu"))
    assert memory_gb == pytest.approx(total_kib / 2**20, rel=0.01)


def test_linear_scaling_rule_and_gradient_accumulation() -> None:
    assert scaled_learning_rate(1e-3, 16, 64) == pytest.approx(4e-3)
    assert scaled_learning_rate(1e-3, 16, 8) == pytest.approx(5e-4)
    assert accumulation_for(64, 16) == (16, 4) and accumulation_for(64, 20) == (16, 4)
    assert accumulation_for(8, 16) == (8, 1) and accumulation_for(10, 4) == (4, 3)
    with pytest.raises(ValueError, match="must be >= 1"):
        accumulation_for(64, 0)
    with pytest.raises(ValueError, match="must be >= 1"):
        scaled_learning_rate(1e-3, 0, 8)
    assert scaled_learning_rate(1e-3, 16, 64, rule="sqrt") == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="rule='cubic'"):
        scaled_learning_rate(1e-3, 16, 64, rule="cubic")


def test_guess_comparison_lists_the_shared_batch_sizes() -> None:
    estimate = estimate_memory(tiny(vocab_size=SMALL_VOCAB), 8, "bf16")
    rows = [
        BatchSizeRow(b, replace(estimate, batch_size=b), None, "h100", 80 * GIB, True)
        for b in (8, 12)
    ]
    lines = format_guess_comparison(rows).splitlines()
    assert len(lines) == 2 and lines[1].split()[:3] == ["8", "12", "GiB"]
    ratio = GUESSED_GB[8] / (estimate.total / GIB)
    assert lines[1].endswith(f"{ratio:.1f}x")


def test_a_gpu_margin_lowers_the_recommendation_to_what_fits_once_corrected() -> None:
    config = Config(**{**TINY_MODEL, "vocab_size": 50, "max_caption_length": 16})
    table = estimate_table(config, "fp32", batch_sizes=(1, 8, 64))
    record = GpuMeasurement(
        "card", "2.5", "p", "fp32", 8, 2.0, None, 1.0, None, "2026-01-01", "", ""
    )
    margin = GpuMargin(0.5, record, 1, today=False)
    budget_gib = table(40).total / 0.9 / GIB
    plain = recommend_batch_size(config, budget_gib, max_batch=64, estimate=table)
    corrected = recommend_batch_size(
        config, budget_gib, max_batch=64, estimate=table, margin=margin
    )
    assert plain in (39, 40) and corrected < plain
    budget = 0.9 * budget_gib * GIB
    assert margin.total(table(corrected)) <= budget < margin.total(table(corrected + 1))
