"""Tests for mmlib.sizing.memory: the estimate against the profiler, its parts, the measurement."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from conftest import TINY_MODEL
from torch._subclasses.fake_tensor import FakeTensorMode

import mmlib.config
from mmlib.config import Config
from mmlib.model.multimodal import MultimodalModel
from mmlib.sizing.batch_size import recommend_batch_size
from mmlib.sizing.gpu_calibration import CALIBRATION_FILE
from mmlib.sizing.memory import (
    ESTIMATE_TOLERANCE,
    GIB,
    NOT_MEASURED,
    OpRecord,
    _StorageTracker,
    default_vocab_size,
    estimate_memory,
    estimate_table,
    measure_memory,
    trace_step_ops,
)

SMALL_VOCAB = 50


def tiny(**overrides: Any) -> Config:
    """A model small enough that a real step takes milliseconds."""
    return Config(**{**TINY_MODEL, "precision": "fp32", **overrides})


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


def test_the_estimated_step_creates_adamw_state_and_its_parts_add_up() -> None:
    # The step skips AdamW on a non-finite gradient norm; on fake tensors, which hold no values,
    # that check must still let it step, or the estimate would lose the optimizer's state.
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
    assert names == ["cuda_context", "allocator_rounding"]
    assert all(NOT_MEASURED in t.source for t in estimate.gpu_terms)
    assert estimate.total == estimate.allocated + sum(t.bytes for t in estimate.gpu_terms)
    assert estimate.autocast_copies > 0
    breakdown = {t.name: t for t in estimate.breakdown()}
    assert "CUDA's autocast policy" in breakdown["autocast_copies"].source
    assert NOT_MEASURED in breakdown["cudnn_workspace"].source
    with pytest.raises(ValueError, match="batch_size=0"):
        estimate_memory(tiny(), 0)


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


def test_estimate_follows_the_trainers_precision_on_a_card_without_bf16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The card's answer is patched, not torch.cuda.is_available: with that patched, the fused
    # optimizer's step queries a CUDA driver this machine lacks.
    monkeypatch.setattr(mmlib.config, "supports_bf16", lambda device: False)
    config = tiny(precision="auto")
    trained_at = config.resolve_precision(torch.device("cuda"))
    estimate = estimate_memory(config, 2, device_type="cuda", vocab_size=SMALL_VOCAB)
    assert trained_at == estimate.precision == "fp16"


def test_a_convolution_holds_its_cudnn_workspace_while_it_runs() -> None:
    # The workspace is allocated for the call and freed after it: in the peak, not after.
    with FakeTensorMode(), _StorageTracker() as tracker:
        tracker.count_workspace = True
        images, weight = torch.empty(2, 3, 16, 16), torch.empty(4, 3, 3, 3)
        tracker.number(images), tracker.number(weight)
        output = torch.nn.functional.conv2d(images, weight)
    operands = (images.numel() + weight.numel() + output.numel()) * 4
    assert tracker.workspace_at_peak == images.numel() * 4  # CUDNN_WORKSPACE_SOURCE's rule
    assert tracker.peak_bytes == operands + images.numel() * 4
    assert tracker.live_bytes == operands


def _recorded_gpu_peaks() -> list[dict[str, Any]]:
    """The calibration file's GPU records that state a measured max_memory_allocated (a CPU
    run of bench/gpu_check.py writes card "cpu")."""
    records = json.loads(CALIBRATION_FILE.read_text())["records"]
    return [r for r in records if r["max_memory_allocated_gib"] is not None and r["card"] != "cpu"]


def _record_id(record: dict[str, Any]) -> str:
    return f"{record['card']}-{record['preset']}-{record['precision']}-{record['batch_size']}"


@pytest.mark.parametrize(
    "record",
    _recorded_gpu_peaks(),
    ids=_record_id,
)
def test_the_cuda_estimate_is_within_tolerance_of_every_recorded_gpu_peak(
    record: dict[str, Any],
) -> None:
    # allocated against max_memory_allocated; the allocator's share of total (allocated and its
    # block rounding; the CUDA context is outside the allocator) against max_memory_reserved.
    config = Config.preset(record["preset"])
    estimate = estimate_memory(config, record["batch_size"], record["precision"], "cuda")
    where = f"{record['card']}, torch {record['torch']}, {record['source']}"
    ratio = estimate.allocated / (record["max_memory_allocated_gib"] * GIB)
    assert abs(ratio - 1) <= ESTIMATE_TOLERANCE, f"allocated/measured {ratio:.3f} ({where})"
    if record["max_memory_reserved_gib"] is not None:
        rounding = sum(t.bytes for t in estimate.gpu_terms if t.name == "allocator_rounding")
        reserved = (estimate.allocated + rounding) / (record["max_memory_reserved_gib"] * GIB)
        assert abs(reserved - 1) <= ESTIMATE_TOLERANCE, f"reserved ratio {reserved:.3f} ({where})"


def test_trace_step_ops_shows_cudas_dtypes_and_what_attention_saves() -> None:
    ops = trace_step_ops(tiny(), 4, "bf16", emulate=True, vocab_size=SMALL_VOCAB)
    by_op: dict[str, list[OpRecord]] = {}
    for record in ops:
        by_op.setdefault(record.op, []).append(record)
    assert {r.dtypes for r in by_op["aten.convolution.default"]} == {("bfloat16",)}
    assert {r.dtypes[0] for r in by_op["aten.native_group_norm.default"]} == {"float32"}
    efficient = by_op["aten._scaled_dot_product_efficient_attention.default"]
    assert all(r.dtypes[:2] == ("bfloat16", "float32") for r in efficient)  # output, log-sum-exp
    assert all(r.saved_bytes > 0 for r in efficient)
    assert "aten._softmax.default" not in by_op  # no attention weights anywhere
    on_cpu = trace_step_ops(tiny(), 4, "fp32", "cpu", vocab_size=SMALL_VOCAB)
    assert {r.dtypes for r in on_cpu if r.op == "aten.convolution.default"} == {("float32",)}
    assert sum(r.saved_bytes for r in on_cpu) > 0


def test_the_estimate_sizes_the_output_layer_for_the_tokenizer_in_use() -> None:
    word = Config(**TINY_MODEL, vocab_size=300, bpe_vocab_size=2000)
    bpe = Config(**{**TINY_MODEL, "tokenizer": "bpe"}, vocab_size=300, bpe_vocab_size=2000)
    assert (default_vocab_size(word), default_vocab_size(bpe)) == (300, 2000)
    larger, smaller = estimate_memory(bpe, 2), estimate_memory(word, 2)
    assert larger.vocab_size == 2000 and larger.total > smaller.total
