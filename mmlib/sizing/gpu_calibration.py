"""GPU memory as measured on real cards, and the margin it gives the estimate until the
estimator is calibrated there.

The measurements live in `mmlib/sizing/calibration/gpu_memory.json` (package data), which GPU runs
extend (bench/gpu_check.py appends to it). Its format:

    {"format": "mmlib-gpu-memory", "version": 1, "records": [RECORD, ...]}

Each RECORD is one training step measured on one card, every field present (null where unknown,
never a guess):

- `card` (str, as `torch.cuda.get_device_name` reports it), `torch` (str, `torch.__version__`);
- `preset`, `precision` ("fp32", "bf16", "fp16"), `batch_size` (int >= 1);
- `max_memory_allocated_gib`, `max_memory_reserved_gib`: `torch.cuda.max_memory_allocated` and
  `max_memory_reserved` over the step, in GiB (2**30 bytes), or null;
- `estimated_allocated_gib`: `mmlib.sizing.memory.estimate_memory(...).allocated` in GiB as the
  estimator of that day gave it, or null;
- `estimate_over_allocated`: that estimate over `max_memory_allocated` as recorded, or null
  (kept for measurements whose absolute figures were not recorded);
- `recorded` (ISO date of the run), `source` (the command or document), `notes` (str).

A record's shortfall is the estimate over `max_memory_allocated`: today's estimate at its batch
when the measured figure is known and an estimate is given, else the record's own
(`estimated_allocated_gib / max_memory_allocated_gib`, or `estimate_over_allocated`, which were
taken against the estimator of their day). The margin for a preset and precision is the worst
shortfall of the most recent day's records: a later run supersedes the earlier ones.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmlib.config import PRESETS, Config
from mmlib.sizing.memory import ESTIMATE_TOLERANCE, GIB, MemoryEstimate

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration" / "gpu_memory.json"
CALIBRATION_FORMAT = "mmlib-gpu-memory"
UNCALIBRATED = "uncalibrated on GPUs"
CPU_CARD = "cpu"  # the card bench/gpu_check.py names when it runs on a CPU: not a GPU record
RECORDED_GIB = 0.01  # the resolution of figures recorded with two decimals
# The fields that shape a step's tensors: a record holds for its preset with these as shipped.
MODEL_FIELDS = (
    "image_size",
    "image_channels",
    "latent_dim",
    "embedding_dim",
    "vocab_size",
    "max_caption_length",
    "base_channels",
    "num_heads",
    "num_layers",
    "text_encoder_layers",
    "feedforward_dim",
    "memory_tokens",
)
_NUMBERS = (
    "max_memory_allocated_gib",
    "max_memory_reserved_gib",
    "estimated_allocated_gib",
    "estimate_over_allocated",
)
_TEXTS = ("card", "torch", "preset", "precision", "recorded", "source", "notes")


@dataclass(frozen=True)
class GpuMeasurement:
    """One recorded training step on a card (see the module docstring for the fields)."""

    card: str
    torch: str
    preset: str
    precision: str
    batch_size: int
    max_memory_allocated_gib: float | None
    max_memory_reserved_gib: float | None
    estimated_allocated_gib: float | None
    estimate_over_allocated: float | None
    recorded: str
    source: str
    notes: str

    @property
    def shortfall(self) -> float | None:
        """The estimate of its day over the measured allocation, from the figures if known, else
        as recorded; None when neither is."""
        if self.estimated_allocated_gib is not None and self.max_memory_allocated_gib is not None:
            return self.estimated_allocated_gib / self.max_memory_allocated_gib
        return self.estimate_over_allocated

    def shortfall_of(self, estimate: Callable[[int], MemoryEstimate] | None) -> float | None:
        """Today's `estimate` at this batch over the measured allocation where that is known,
        else the record's own `shortfall`."""
        if estimate is None or self.max_memory_allocated_gib is None:
            return self.shortfall
        return estimate(self.batch_size).allocated / GIB / self.max_memory_allocated_gib


def _record(raw: Any, where: str) -> GpuMeasurement:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a record must be an object")
    expected = {*_TEXTS, *_NUMBERS, "batch_size"}
    if set(raw) != expected:
        missing, extra = sorted(expected - set(raw)), sorted(set(raw) - expected)
        raise ValueError(f"{where}: missing fields {missing}, unknown fields {extra}")
    for name in _TEXTS:
        if not isinstance(raw[name], str):
            raise ValueError(f"{where}: {name} must be a string, not {raw[name]!r}")
    batch = raw["batch_size"]
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"{where}: batch_size must be an integer >= 1, not {batch!r}")
    for name in _NUMBERS:
        value = raw[name]
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0
        ):
            raise ValueError(f"{where}: {name} must be a positive number or null, not {value!r}")
    try:
        datetime.date.fromisoformat(raw["recorded"])
    except ValueError:
        raise ValueError(
            f"{where}: recorded must be an ISO date, not {raw['recorded']!r}"
        ) from None
    return GpuMeasurement(**raw)


def load_gpu_measurements(path: str | os.PathLike[str] = CALIBRATION_FILE) -> list[GpuMeasurement]:
    """Every record of a calibration file, checked field by field (errors name the file)."""
    path = Path(path)
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
        raise ValueError(f"{path}: not a GPU memory calibration (format {CALIBRATION_FORMAT!r})")
    if not isinstance(data.get("records"), list):
        raise ValueError(f"{path}: 'records' must be a list")
    return [_record(raw, f"{path}, record {i}") for i, raw in enumerate(data["records"])]


@dataclass(frozen=True)
class GpuMargin:
    """The worst recorded shortfall of the estimate for a preset and precision, and the
    measurement it comes from."""

    shortfall: float  # estimate / measured allocation, < 1 when the estimate falls short
    worst: GpuMeasurement
    compared: int  # records of that day it was taken from
    today: bool  # whether `shortfall` compares today's estimate (else the record's own)
    within_tolerance: bool = False  # every compared record within ESTIMATE_TOLERANCE
    set_aside: int = 0  # ratio-only records of that day, taken against an estimator since changed

    @property
    def calibrated(self) -> bool:
        """Whether every record of the day was compared and within the tolerance."""
        return self.within_tolerance and not self.set_aside

    def total(self, estimate: MemoryEstimate) -> int:
        """The estimate's total with its allocation divided by the shortfall (never below the
        estimate itself)."""
        allocated = round(estimate.allocated / min(self.shortfall, 1.0))
        return estimate.total - estimate.allocated + allocated

    def describe(self) -> str:
        """One line: how far the estimate fell short, where, and what is applied."""
        worst = self.worst
        state = "calibrated on GPUs" if self.calibrated else UNCALIBRATED
        which = "today's estimate" if self.today else "the estimate of that day"
        aside = (
            f"; {self.set_aside} more kept only a ratio to an estimate that has changed since, "
            "set aside"
            if self.set_aside
            else ""
        )
        return (
            f"{worst.preset}, {worst.precision}: {state}; on an {worst.card} (torch {worst.torch},"
            f" {worst.recorded}) {which} was {self.shortfall:.2f} of max_memory_allocated at"
            f" batch {worst.batch_size} (the worst of {self.compared} compared{aside}), so GPU"
            f" recommendations divide the estimated allocation by {min(self.shortfall, 1.0):.2f}"
        )


def _estimator_changed(
    records: list[GpuMeasurement], estimate: Callable[[int], MemoryEstimate]
) -> bool:
    """Whether today's estimate differs from one a record kept beside its measurement (beyond
    the recorded figures' two decimals)."""
    return any(
        abs(estimate(r.batch_size).allocated / GIB - r.estimated_allocated_gib) > RECORDED_GIB
        for r in records
        if r.estimated_allocated_gib is not None and r.max_memory_allocated_gib is not None
    )


def gpu_margin(
    preset: str,
    precision: str,
    estimate: Callable[[int], MemoryEstimate] | None = None,
    measurements: list[GpuMeasurement] | None = None,
) -> GpuMargin | None:
    """The margin for `preset` and `precision` from the most recent day's records with a known
    shortfall (default: the shipped calibration file), or None when none is recorded.

    `estimate` (batch size -> today's estimate of this preset and precision) re-compares the
    records whose measured allocation is known. Records that kept only a ratio keep it, unless
    the estimator has changed since their day: then they are set aside (and said to be). A CPU
    run's records (card "cpu") are not GPU measurements and never count.
    """
    records = load_gpu_measurements() if measurements is None else measurements
    known = [
        r
        for r in records
        if r.preset == preset
        and r.precision == precision
        and r.shortfall is not None
        and r.card != CPU_CARD
    ]
    if not known:
        return None
    latest = max(r.recorded for r in known)
    day = [r for r in known if r.recorded == latest]
    changed = estimate is not None and _estimator_changed(day, estimate)
    compared = [r for r in day if not (changed and r.max_memory_allocated_gib is None)]
    shortfalls = [(r.shortfall_of(estimate) or 0.0, i) for i, r in enumerate(compared)]
    worst_shortfall, index = min(shortfalls)
    worst = compared[index]
    return GpuMargin(
        worst_shortfall,
        worst,
        len(compared),
        today=estimate is not None and worst.max_memory_allocated_gib is not None,
        within_tolerance=all(abs(s - 1) <= ESTIMATE_TOLERANCE for s, _ in shortfalls),
        set_aside=len(day) - len(compared),
    )


def config_margin(
    config: Config, precision: str, estimate: Callable[[int], MemoryEstimate] | None = None
) -> GpuMargin | None:
    """`gpu_margin` for a config: records are of a preset as shipped, so a config whose model
    or input (`MODEL_FIELDS`) differs from its preset's gets none."""
    if config.preset_name not in PRESETS:
        return None
    shipped = Config.preset(config.preset_name)
    if any(getattr(config, name) != getattr(shipped, name) for name in MODEL_FIELDS):
        return None
    return gpu_margin(config.preset_name, precision, estimate)


def format_measurements(
    records: list[GpuMeasurement], estimate: Callable[[int], MemoryEstimate] | None = None
) -> str:
    """The records as a table in GiB ("-" where a figure was not recorded), with `estimate`
    (today's, for the records' preset and precision) at each batch when given."""

    def cell(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    columns = ["batch", "allocated", "reserved", "estimate then", "then/measured"]
    columns += ["estimate today", "today/measured"] if estimate is not None else []
    lines = ["  ".join(f"{c:>14}" for c in columns)]
    for r in records:
        cells = [str(r.batch_size), cell(r.max_memory_allocated_gib)]
        cells += [cell(r.max_memory_reserved_gib), cell(r.estimated_allocated_gib)]
        cells.append(cell(r.shortfall))
        if estimate is not None:
            cells.append(cell(estimate(r.batch_size).allocated / GIB))
            known = r.max_memory_allocated_gib is not None
            cells.append(cell(r.shortfall_of(estimate) if known else None))
        lines.append("  ".join(f"{c:>14}" for c in cells))
    sources = sorted(
        {f"{r.card}, torch {r.torch}, {r.preset}, {r.precision}, {r.recorded}" for r in records}
    )
    notes = [f"source: {source}" for source in sorted({r.source for r in records})]
    notes += [f"batch {r.batch_size}: {r.notes}" for r in records if r.notes]
    legend = "GiB; allocated and reserved: torch.cuda.max_memory_allocated and max_memory_reserved"
    return "\n".join([*sources, *lines, legend, *notes])


def margin_note(preset: str, precision: str, margin: GpuMargin | None) -> str:
    """What to print beside a GPU recommendation: the margin applied, or that none is recorded."""
    if margin is not None:
        return margin.describe()
    return (
        f"{preset}, {precision}: {UNCALIBRATED}; no GPU measurement is recorded for this model "
        "and precision, so no margin is applied (a GPU run records one)"
    )
