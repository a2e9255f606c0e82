"""Choosing a batch size: the cards, the estimated table, the recommendation, the finder that
measures on the device, and what to do past the card's memory (accumulation, learning rate).

The memory figures come from `mmlib.sizing.memory` (estimated on fake tensors, or measured).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mmlib.config import AUTO, PRESETS, Config, ConfigError
from mmlib.model.multimodal import encoder_channels
from mmlib.sizing.gpu_calibration import GpuMargin
from mmlib.sizing.memory import (
    GIB,
    NOT_MEASURED,
    MemoryEstimate,
    MemoryMeasurement,
    default_vocab_size,
    estimate_memory,
    free_memory,
    measure_memory,
    run_steps,
)

# Card sizes in GiB, as the cards are sold ("80 GB"); torch.cuda reports slightly less.
GPUS: dict[str, float] = {"rtx3090": 24, "a100-40": 40, "a100-80": 80, "h100": 80, "h200": 141}
SAFETY_MARGIN = 0.9  # the finder returns this share of the largest batch that passed
MAX_AUTO_BATCH = 512
# A guessed table (batch size -> GB) for seed-large's model, never measured: notebook 04 and
# `format_guess_comparison` set it beside the estimate (docs/coming-from-train-production.md).
GUESSED_GB: dict[int, float] = {8: 12, 16: 20, 32: 35, 64: 65}


@dataclass(frozen=True)
class BatchSizeRow:
    """One batch size: the estimate, the measurement if one was made, and the card it fits."""

    batch_size: int
    estimate: MemoryEstimate
    measurement: MemoryMeasurement | None
    gpu: str
    gpu_bytes: int
    fits: bool


def gpu_memory(gpu: str | float) -> tuple[str, int]:
    """(name, bytes) of a card: a name in `GPUS` or a size in GiB ("24", 24.0)."""
    if isinstance(gpu, (int, float)) and not isinstance(gpu, bool):
        return f"{gpu:g} GiB", _positive_gib(float(gpu))
    name = str(gpu).strip().lower()
    if name in GPUS:
        return name, int(GPUS[name] * GIB)
    try:
        size = float(name.removesuffix("gib").removesuffix("gb").strip())
    except ValueError:
        raise ValueError(
            f"unknown GPU {gpu!r}: known cards are {', '.join(GPUS)}, or give a size in GiB"
        ) from None
    return f"{size:g} GiB", _positive_gib(size)


def _positive_gib(size: float) -> int:
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"GPU memory {size:g} GiB: must be a positive number")
    return int(size * GIB)


def batch_size_table(
    config: Config,
    batch_sizes: Sequence[int] = (8, 16, 32, 64),
    gpu: str | float | None = None,
    measure: bool = False,
    device: torch.device | str | None = None,
    precision: str | None = None,
    headroom: float = 0.1,
) -> list[BatchSizeRow]:
    """Estimated (and with `measure`, measured on `device`) memory for each batch size, and
    whether it fits `gpu` (default h100) with `headroom` left free.

    The estimate is for CUDA unless `device` is another type, so a CPU measurement compares
    with an estimate of the same step.
    """
    name, capacity = gpu_memory("h100" if gpu is None else gpu)
    if measure and device is None:
        raise ValueError("measure=True needs a device to measure on")
    device_type = "cuda" if device is None else torch.device(device).type
    rows = []
    for batch_size in batch_sizes:
        estimate = estimate_memory(config, batch_size, precision, device_type)
        measured = (
            measure_memory(config, batch_size, device, estimate.precision)
            if measure and device is not None
            else None
        )
        fits = estimate.total <= capacity * (1 - headroom)
        rows.append(BatchSizeRow(batch_size, estimate, measured, name, capacity, fits))
    return rows


def format_batch_size_table(rows: Sequence[BatchSizeRow]) -> str:
    """The table as text (GiB), with the GPU-only terms and their sources under it."""
    if not rows:
        return "(no batch sizes)"
    first = rows[0].estimate
    header = (
        f"{first.preset}, {first.precision}, vocabulary {first.vocab_size:,}, "
        f"estimated for {first.device_type}; card {rows[0].gpu} "
        f"({rows[0].gpu_bytes / GIB:g} GiB)"
    )
    columns = (
        "batch",
        "weights",
        "grads",
        "AdamW",
        "activ.",
        "transient",
        "autocast",
        "allocated",
        "GPU-only",
        "total",
        "measured",
        "samples/s",
        "fits",
    )
    lines = [header, "  ".join(f"{c:>9}" for c in columns)]
    for row in rows:
        est, meas = row.estimate, row.measurement
        gpu_only = est.total - est.allocated
        parts = (
            est.weights,
            est.gradients,
            est.optimizer_state,
            est.activations,
            est.transient,
            est.autocast_copies,
            est.allocated,
            gpu_only,
            est.total,
        )
        cells = [f"{row.batch_size:>9}", *(f"{b / GIB:>9.2f}" for b in parts)]
        cells.append(f"{meas.peak_allocated / GIB:>9.2f}" if meas else f"{'-':>9}")
        cells.append(f"{meas.samples_per_second:>9.1f}" if meas else f"{'-':>9}")
        cells.append(f"{'yes' if row.fits else 'no':>9}")
        lines.append("  ".join(cells))
    return "\n".join(lines + _footer(rows))


def _footer(rows: Sequence[BatchSizeRow]) -> list[str]:
    """Where the measurements come from, and the GPU-only terms with their sources."""
    devices = sorted({row.measurement.device for row in rows if row.measurement is not None})
    measured = f"; measured on {', '.join(devices)}" if devices else ""
    lines = [f"memory in GiB at the step's peak{measured}"]
    terms = rows[0].estimate.gpu_terms
    if terms:
        on_gpu = any(device.startswith("cuda") for device in devices)
        lines.append("GPU-only terms" + ("" if on_gpu else f", {NOT_MEASURED}") + ":")
        lines += [f"  {term.name}: {term.source}" for term in terms]
    return lines


def recommend_batch_size(
    config: Config,
    gpu_memory_gb: float,
    headroom: float = 0.1,
    precision: str | None = None,
    device_type: str = "cuda",
    max_batch: int = 4096,
    estimate: Callable[[int], MemoryEstimate] | None = None,
    margin: GpuMargin | None = None,
) -> int:
    """The largest batch whose estimated total fits (1 - headroom) of a card of `gpu_memory_gb`.

    The headroom is for what the estimate leaves out: the caching allocator's reserved but
    unused blocks, other processes, and the gap between a card's nominal and usable memory.
    `estimate` (batch size -> estimate) replaces `estimate_memory` with `precision` and
    `device_type`, for example with an `EstimateTable` of them. `margin` (from
    `gpu_calibration.gpu_margin`) corrects each estimate by the shortfall measured on a GPU.
    """
    if not 0 <= headroom < 1:
        raise ValueError(f"headroom={headroom}: must be in [0, 1)")
    budget = _positive_gib(gpu_memory_gb) * (1 - headroom)

    def total(batch_size: int) -> int:
        if estimate is not None:
            estimated = estimate(batch_size)
        else:
            estimated = estimate_memory(config, batch_size, precision, device_type)
        return estimated.total if margin is None else margin.total(estimated)

    smallest = total(1)
    if smallest > budget:
        raise ValueError(
            f"even batch_size=1 needs an estimated {smallest / GIB:.1f} GiB, more than "
            f"{budget / GIB:.1f} GiB ({1 - headroom:.0%} of {gpu_memory_gb:g} GiB): "
            "use a smaller preset, a lower image_size or bf16"
        )
    return _largest_within(total, budget, smallest, max_batch)


def _largest_within(
    total: Callable[[int], int], budget: float, smallest: int, max_batch: int
) -> int:
    """The largest batch in [1, max_batch] with total(batch) <= budget, for an increasing total
    that is affine in the batch past a small one: secant steps, a bisection after two steps in a
    row that did not halve the interval."""
    largest = total(max_batch)
    if largest <= budget:
        return max_batch
    low, high, at_low, at_high = 1, max_batch, smallest, largest
    slow_steps = 0
    while high - low > 1:
        guess = (low + high) // 2
        if slow_steps < 2:
            guess = low + int((budget - at_low) / (at_high - at_low) * (high - low))
        guess = min(max(guess, low + 1), high - 1)
        width = high - low
        value = total(guess)
        if value <= budget:
            low, at_low = guess, value
        else:
            high, at_high = guess, value
        slow_steps = slow_steps + 1 if 2 * (high - low) > width else 0
    return low


def _largest_passing(passes: Callable[[int], bool], start: int, max_batch: int) -> int:
    """The largest batch <= max_batch that passes, given that `start` passes and passing is
    monotone: double until a failure, then bisect."""
    low, high = start, None
    while high is None and low < max_batch:
        trial = min(low * 2, max_batch)
        if passes(trial):
            low = trial
        else:
            high = trial
    while high is not None and high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if passes(middle) else (low, middle)
    return low


def find_max_batch_size(
    config: Config,
    device: torch.device | str,
    start: int = 1,
    max_batch: int = 4096,
    margin: float = SAFETY_MARGIN,
    precision: str | None = None,
) -> int:
    """The largest batch a full training step (optimizer included, full-length captions, the
    config's image size) runs at on `device` without running out of memory, times `margin`.

    Doubles from `start`, then bisects; memory is freed after every trial. The margin is for
    what a single step does not show (fragmentation that builds up, other processes).
    """
    device = torch.device(device)
    precision = config.resolve_precision(device, precision)
    vocab_size = default_vocab_size(config)

    def passes(batch_size: int) -> bool:
        try:
            run_steps(config, batch_size, device, precision, vocab_size)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            free_memory()

    if not passes(start):
        raise ValueError(f"batch_size={start} already runs out of memory on {device}")
    return max(1, int(_largest_passing(passes, start, max_batch) * margin))


def device_memory_gb(device: torch.device) -> float | None:
    """Memory of `device` in GiB: the GPU's total, or the machine's RAM for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / GIB
    if device.type == "mps":
        return torch.mps.recommended_max_memory() / GIB
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):
        return None


def resolve_batch_size(config: Config, device: torch.device, processes: int = 1) -> int:
    """The global batch for `batch_size="auto"`: on a GPU what the finder gives each of the
    `processes` (at most `MAX_AUTO_BATCH` each), elsewhere the preset's batch size (a CPU's
    speed, not its memory, limits the batch)."""
    if config.batch_size != AUTO:
        return int(config.batch_size)
    if device.type == "cuda":
        return processes * find_max_batch_size(config, device, max_batch=MAX_AUTO_BATCH)
    preset = Config.preset(config.preset_name) if config.preset_name in PRESETS else Config()
    return int(preset.batch_size)


def out_of_memory_message(config: Config, device: torch.device) -> str:
    """What to say when training runs out of memory: the batch the estimate says fits."""
    line = f"out of memory at batch_size={config.batch_size} on {device}"
    memory = device_memory_gb(device)
    if memory is None:
        return f"{line}: lower batch_size and raise grad_accum_steps to keep the effective batch"
    try:
        fitting = recommend_batch_size(config, memory, device_type=device.type)
    except ValueError as error:
        return f"{line}; {error}"
    batch, accum = int(config.batch_size), config.grad_accum_steps
    if fitting >= batch:
        return (
            f"{line} ({memory:.0f} GiB), though the estimate says batch_size={fitting} fits: "
            "another process or fragmentation may hold memory; try "
            f"batch_size={max(1, batch // 2)} and grad_accum_steps={2 * accum}"
        )
    per_step, steps = accumulation_for(batch * accum, fitting)
    return (
        f"{line} ({memory:.0f} GiB): the estimate says batch_size={fitting} fits; set "
        f"batch_size={per_step} and grad_accum_steps={steps} to keep the effective batch"
    )


# ---------------------------------------------------------------- past the card's memory


def scaled_learning_rate(
    base_lr: float, base_batch: int, batch: int, rule: str = "linear"
) -> float:
    """The learning rate for `batch`, from `base_lr` tuned at `base_batch`: in proportion to the
    batch (`rule="linear"`, Goyal et al. 2017, "Accurate, Large Minibatch SGD"), or to its square
    root (`rule="sqrt"`, the gentler rule often safer with Adam-type optimizers)."""
    if base_batch < 1 or batch < 1:
        raise ValueError(f"batch sizes {base_batch} and {batch}: must be >= 1")
    if rule not in ("linear", "sqrt"):
        raise ValueError(f"rule={rule!r}: must be 'linear' or 'sqrt'")
    ratio = batch / base_batch
    return base_lr * (ratio if rule == "linear" else math.sqrt(ratio))


def accumulation_for(target_batch: int, max_per_step: int) -> tuple[int, int]:
    """(batch_size, grad_accum_steps) for an effective batch of `target_batch` when at most
    `max_per_step` samples fit one forward/backward: the fewest accumulation steps, the batch
    split evenly among them (the effective batch rounds up when the steps do not divide it)."""
    if target_batch < 1 or max_per_step < 1:
        raise ValueError(f"batch sizes {target_batch} and {max_per_step}: must be >= 1")
    steps = math.ceil(target_batch / max_per_step)
    return math.ceil(target_batch / steps), steps


def format_guess_comparison(
    rows: Sequence[BatchSizeRow], guessed_gb: dict[int, float] = GUESSED_GB
) -> str:
    """The guessed table (`GUESSED_GB`) beside the estimated totals in `rows`, for the batch
    sizes in both (the guess in GB as it was written, read as GiB like the card sizes)."""
    lines = [f"{'batch':>5}  {'guessed':>12}  {'estimated':>9}  {'guess/estimate':>14}"]
    for row in rows:
        if row.batch_size in guessed_gb:
            guess, total = guessed_gb[row.batch_size], row.estimate.total / GIB
            cells = f"{row.batch_size:>5}  {guess:>8.0f} GiB  {total:>5.1f} GiB"
            lines.append(f"{cells}  {guess / total:>13.1f}x")
    return "\n".join(lines)


# ---------------------------------------------------------------- before training allocates


def available_memory(device: torch.device) -> int | None:
    """Bytes a training step may allocate on `device` now: on CUDA the free memory plus what
    this process holds already, on a CPU the RAM available; None where unknown (MPS, a system
    without sysconf)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device)
    if device.type != "cpu":
        return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def quick_memory_bound(config: Config, batch_size: int) -> int:
    """A cheap upper bound on `estimate_memory`'s total, in microseconds rather than seconds:
    the parameters 8 times over (weights, gradients, AdamW's two moments, copies) and, per sample,
    every feature map, transformer activation and logit 16 times over, counted from the shapes
    (tests/test_cli_numbers_and_bounds.py checks it against the estimate)."""
    levels = encoder_channels(config)
    size, length, width = config.image_size, config.max_caption_length, config.embedding_dim
    image = config.image_channels * size * size
    feature_maps = sum(c * (size >> (i + 1)) ** 2 for i, c in enumerate(levels))
    cells = (size >> len(levels)) ** 2
    memory = config.memory_tokens + cells
    layers = config.num_layers + config.text_encoder_layers
    per_layer = length * (width + config.feedforward_dim) + config.num_heads * length * (
        length + memory
    )
    per_sample = (
        image
        + 3 * feature_maps  # encoder, decoder and the perceptual term's second encoder pass
        + config.latent_dim
        + memory * width * (config.num_layers + 1)
        + layers * per_layer
        + length * config.vocabulary_limit
    )
    parameters = _parameter_count(config)
    return 4 * (8 * parameters + 16 * batch_size * (per_sample + batch_size))


def _parameter_count(config: Config) -> int:
    """An upper bound on the model's parameters at `config.vocabulary_limit` tokens, from its
    layers' shapes (building it, even on the meta device, takes seconds the first time)."""
    levels = encoder_channels(config)
    width, latent, feed = config.embedding_dim, config.latent_dim, config.feedforward_dim
    feature, cells = levels[-1], (config.image_size >> len(levels)) ** 2
    convs = sum(16 * a * b for a, b in zip([config.image_channels, *levels], levels, strict=False))
    image = 2 * convs + 2 * feature * (feature * cells + latent) + feature * feature
    layer = 4 * width * width + 2 * width * feed  # attention and feed-forward
    text = 2 * (config.vocabulary_limit + config.max_caption_length) * width
    memory = (latent + width) * (latent + config.memory_tokens * width) + cells * width
    layers = config.text_encoder_layers * layer + config.num_layers * (layer + 4 * width**2)
    heads = config.vocabulary_limit * width + 6 * width * width
    return 2 * (image + text + memory + layers + heads)


def check_memory_fits(config: Config, device: torch.device, batch_size: int) -> None:
    """Before training allocates: refuse a first step that the estimate (`estimate_memory`) says
    does not fit `device`'s memory, with the estimate and the largest batch that fits. The
    estimate takes seconds, so it is skipped where `quick_memory_bound` is under half of the
    memory (every course run on a laptop); so is the check where the memory is unknown."""
    capacity = available_memory(device)
    if capacity is None or quick_memory_bound(config, batch_size) <= capacity / 2:
        return
    precision = config.resolve_precision(device)
    needed = estimate_memory(config, batch_size, precision, device.type).total
    if needed <= capacity:
        return
    where = f"{device} has {capacity / GIB:.1f} GiB available"
    try:
        fitting = recommend_batch_size(
            config, capacity / GIB, 0.0, precision, device.type, max_batch=batch_size
        )
        advice = f"set batch_size={fitting} (the largest that fits) and raise grad_accum_steps"
    except ValueError:
        advice = "use a smaller preset or a lower image_size, latent_dim or embedding_dim"
    raise ConfigError(
        f"batch_size={batch_size}: the first training step needs an estimated "
        f"{needed / GIB:.1f} GiB and {where}; {advice}"
    )
