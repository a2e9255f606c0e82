"""Tests for mmlib.sizing.gpu_calibration: the recorded GPU measurements and their margin."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mmlib.config import Config
from mmlib.sizing.gpu_calibration import (
    CALIBRATION_FILE,
    GpuMeasurement,
    config_margin,
    format_measurements,
    gpu_margin,
    load_gpu_measurements,
    margin_note,
)
from mmlib.sizing.memory import GIB, MemoryEstimate, MemoryTerm


def _raw(**fields: Any) -> dict[str, Any]:
    record = {
        "card": "NVIDIA H100",
        "torch": "2.11",
        "preset": "seed-large",
        "precision": "bf16",
        "batch_size": 8,
        "max_memory_allocated_gib": 4.0,
        "max_memory_reserved_gib": None,
        "estimated_allocated_gib": 3.0,
        "estimate_over_allocated": None,
        "recorded": "2026-11-26",
        "source": "test",
        "notes": "",
    }
    return {**record, **fields}


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"format": "mmlib-gpu-memory", "version": 1, "records": records}))
    return path


def test_the_shipped_file_holds_the_h100_figures_the_sizing_page_records() -> None:
    records = load_gpu_measurements()
    assert CALIBRATION_FILE.name == "gpu_memory.json"
    assert [(r.batch_size, r.max_memory_allocated_gib) for r in records] == [
        (8, 3.23),
        (16, None),
        (32, None),
        (64, 13.73),
    ]
    assert [round(r.shortfall or 0, 2) for r in records] == [0.79, 0.75, 0.70, 0.67]


def test_the_margin_is_the_worst_shortfall_of_the_preset_and_precision() -> None:
    margin = gpu_margin("seed-large", "bf16")
    assert margin is not None and margin.worst.batch_size == 64 and margin.compared == 4
    assert margin.shortfall == pytest.approx(9.17 / 13.73) and not margin.calibrated
    assert gpu_margin("seed-large", "fp32") is None and gpu_margin("base", "bf16") is None


def test_shortfall_prefers_the_figures_to_the_recorded_ratio() -> None:
    known = GpuMeasurement(**_raw(estimate_over_allocated=0.5))
    assert known.shortfall == 0.75
    ratio_only = replace(known, max_memory_allocated_gib=None)
    assert ratio_only.shortfall == 0.5
    assert replace(ratio_only, estimate_over_allocated=None).shortfall is None


def test_a_cpu_run_of_the_gpu_check_is_not_a_gpu_record() -> None:
    gpu = GpuMeasurement(**_raw())
    cpu = GpuMeasurement(**_raw(card="cpu", estimated_allocated_gib=4.0, recorded="2026-12-03"))
    margin = gpu_margin("seed-large", "bf16", measurements=[gpu, cpu])
    assert margin is not None and margin.worst is gpu and margin.compared == 1
    assert gpu_margin("seed-large", "bf16", measurements=[cpu]) is None


def test_a_later_run_supersedes_earlier_records() -> None:
    early = GpuMeasurement(**_raw(estimated_allocated_gib=2.0))  # 0.5
    later = GpuMeasurement(**_raw(estimated_allocated_gib=3.8, recorded="2026-12-03"))  # 0.95
    margin = gpu_margin("seed-large", "bf16", measurements=[early, later])
    assert margin is not None and margin.shortfall == pytest.approx(0.95) and margin.calibrated
    assert "calibrated on GPUs" in margin.describe() and "uncalibrated" not in margin.describe()


def test_the_margin_divides_the_allocation_and_keeps_the_gpu_terms() -> None:
    margin = gpu_margin("seed-large", "bf16", measurements=[GpuMeasurement(**_raw())])  # 0.75
    estimate = MemoryEstimate(
        "seed-large", 8, "bf16", "cuda", 100, 3 * GIB, 0, 0, 0, 0, 0,
        (MemoryTerm("cuda_context", GIB, "allowance"),),
    )  # fmt: skip
    assert margin is not None and margin.total(estimate) == 4 * GIB + GIB
    records = [GpuMeasurement(**_raw(estimated_allocated_gib=5.0))]
    over = gpu_margin("seed-large", "bf16", measurements=records)
    assert over is not None and over.total(estimate) == estimate.total  # never below it


def _allocating(gib: float) -> MemoryEstimate:
    return MemoryEstimate("seed-large", 8, "bf16", "cuda", 100, round(gib * GIB), 0, 0, 0, 0, 0, ())


def test_todays_estimate_replaces_the_recorded_one_where_the_measurement_is_known() -> None:
    measured = GpuMeasurement(**_raw())  # 4.0 GiB measured, 3.0 estimated that day
    margin = gpu_margin("seed-large", "bf16", lambda batch: _allocating(3.8), [measured])
    assert margin is not None and margin.shortfall == pytest.approx(0.95) and margin.today
    assert margin.calibrated and "calibrated on GPUs; " in margin.describe()
    assert "today's estimate was 0.95" in margin.describe()
    short = gpu_margin("seed-large", "bf16", lambda batch: _allocating(3.4), [measured])
    assert short is not None and not short.calibrated and "uncalibrated" in short.describe()


def _ratio_only(ratio: float) -> GpuMeasurement:
    unknown = {"max_memory_allocated_gib": None, "estimated_allocated_gib": None}
    return GpuMeasurement(**_raw(batch_size=16, estimate_over_allocated=ratio, **unknown))


def test_ratios_against_an_estimator_that_has_changed_since_are_set_aside() -> None:
    measured = GpuMeasurement(**_raw())  # 4.0 GiB measured, 3.0 estimated that day
    records = [measured, _ratio_only(0.6)]
    changed = gpu_margin("seed-large", "bf16", lambda batch: _allocating(3.8), records)
    assert changed is not None and changed.worst is measured and changed.set_aside == 1
    assert changed.shortfall == pytest.approx(0.95) and not changed.calibrated
    assert "worst of 1 compared; 1 more kept only a ratio" in changed.describe()
    same = gpu_margin("seed-large", "bf16", lambda batch: _allocating(3.004), records)
    assert same is not None and same.worst is records[1] and same.shortfall == 0.6
    assert same.set_aside == 0 and "the estimate of that day was 0.60" in same.describe()


def test_margin_note_says_when_nothing_is_recorded() -> None:
    note = margin_note("base", "fp32", None)
    assert note.startswith("base, fp32: uncalibrated on GPUs; no GPU measurement is recorded")
    margin = gpu_margin("seed-large", "bf16")
    assert "the estimate of that day was 0.67 of max_memory_allocated at batch 64" in margin_note(
        "seed-large", "bf16", margin
    )


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_raw(batch_size=0), "batch_size must be an integer >= 1"),
        (_raw(max_memory_reserved_gib=-1), "max_memory_reserved_gib must be a positive number"),
        (_raw(recorded="yesterday"), "recorded must be an ISO date"),
        (_raw(card=None), "card must be a string"),
        ({k: v for k, v in _raw().items() if k != "notes"}, "missing fields ['notes']"),
    ],
)
def test_bad_records_are_refused_naming_the_field(
    tmp_path: Path, record: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path / "gpu_memory.json", [_raw(), record])
    with pytest.raises(ValueError, match="record 1") as refused:
        load_gpu_measurements(path)
    assert message in str(refused.value)


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"records": []}))
    with pytest.raises(ValueError, match="not a GPU memory calibration"):
        load_gpu_measurements(path)


def test_a_config_that_changes_the_model_gets_no_margin_from_its_presets_records() -> None:
    assert config_margin(Config.preset("seed-large"), "bf16") == gpu_margin("seed-large", "bf16")
    assert config_margin(Config.preset("seed-large", batch_size=4), "bf16") is not None
    assert config_margin(Config.preset("seed-large", image_size=256), "bf16") is None
    assert config_margin(Config(), "bf16") is None  # a custom config has no preset's records


def test_format_measurements_shows_unrecorded_figures_as_dashes() -> None:
    records = [GpuMeasurement(**_raw()), _ratio_only(0.6)]
    text = format_measurements(records, lambda batch: _allocating(3.8))
    lines = text.splitlines()
    assert lines[0] == "NVIDIA H100, torch 2.11, seed-large, bf16, 2026-11-26"
    assert lines[2].split() == ["8", "4.00", "-", "3.00", "0.75", "3.80", "0.95"]
    assert lines[3].split() == ["16", "-", "-", "-", "0.60", "3.80", "-"]
    assert format_measurements(records).splitlines()[2].split() == [
        "8",
        "4.00",
        "-",
        "3.00",
        "0.75",
    ]
