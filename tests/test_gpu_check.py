"""bench/gpu_check.py end to end on the CPU with the tiny model, so the one GPU run is not
spent on a typo (the same parts, in seconds; torch.compile left out: it takes minutes here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():  # bench/ is not a package
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_runs_every_part_on_the_cpu(tmp_path: Path) -> None:
    gpu_check = _gpu_check()
    out = tmp_path / "out"
    argv = [str(out), "--device", "cpu", "--tiny", "--presets", "cpu-tiny"]
    argv += ["--precisions", "fp32", "--batches", "2,4", "--speed-preset", "cpu-tiny"]
    argv += ["--speed-batch", "4", "--ablation-batch", "2", "--steps", "2", "--warmup", "1"]
    argv += ["--images", "24", "--test-images", "4", "--finder-max", "4", "--no-compile"]
    argv += ["--parity-steps", "10", "--parity-batch", "4"]
    assert gpu_check.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["failed"] == []
    # The calibration file: the package's records, then this run's, in its format.
    shipped = json.loads(gpu_check.CALIBRATION.read_text())["records"]
    written = json.loads((out / "gpu_memory.json").read_text())["records"]
    assert written[: len(shipped)] == shipped and len(written) == len(shipped) + 2
    for record in written[len(shipped) :]:
        assert record.keys() == shipped[0].keys() and record["card"] == "cpu"
        assert abs(record["estimate_over_allocated"] - 1) <= 0.10  # the CPU's own accuracy
    ops = json.loads((out / "ops.json").read_text())
    assert ops["device"] and ops["emulated"] and "aten.convolution.default" in str(ops["device"])
    assert set(results["ops"]["ops_that_differ"]) == set(ops["by_op_that_differ"])
    speed = results["speed"]
    assert all(row["samples_per_second"] > 0 for name, row in speed.items() if name != "apart")
    assert all(
        row["flops_per_sample"] > 0 and row["mfu"] is None
        for name, row in speed.items()
        if name != "apart"
    )
    # Loss parity: the same weights and batches, so on the CPU (fp32 both, channels_last and
    # padded tokens on the fast side) the curves agree far inside the bar.
    parity = results["loss_parity"]
    assert len(parity["total_loss"]["plain"]) == len(parity["total_loss"]["fast"]) == 10
    assert parity["burn_in_steps"] == 1 and parity["pass"] is True
    assert parity["total_loss"]["plain"][0] == pytest.approx(parity["total_loss"]["fast"][0])
    assert 0 <= parity["largest_relative_gap"] < 1e-3
    assert results["finder"]["batch_size"] >= 1
    assert results["train"]["evaluated"] and results["train"]["returncode"] == 0
    assert "samples/s" in (out / "results.txt").read_text()
    assert (
        "loss parity: plain vs fast (fp32, channels_last, data on device)"
        in (out / "results.txt").read_text()
    )


def test_the_bf16_peak_table_names_cards_by_their_device_names() -> None:
    gpu_check = _gpu_check()
    assert gpu_check.bf16_peak("NVIDIA H100 80GB HBM3") == 989.4e12
    assert gpu_check.bf16_peak("NVIDIA H100 PCIe") == 756e12
    assert gpu_check.bf16_peak("NVIDIA H200") == 989.4e12
    assert gpu_check.bf16_peak("cpu") is None
