"""What a training step costs in memory: estimated without a GPU, measured with one.

The estimate runs one real training step (forward, losses, backward, gradient clipping, AdamW)
of `MultimodalModel` on fake tensors (`FakeTensorMode`: shapes and dtypes, no data), so it
takes seconds on a CPU for any preset. A dispatch mode counts every tensor storage the step
allocates and frees, and the peak of their sum is the estimate. Two steps are run and the second
is counted, so AdamW's state exists as it does from the second step of training on.

The measurement runs the same step on real tensors and reads the peak from an independent
source: `torch.cuda.max_memory_allocated` on a GPU, the allocation and free events that
`torch.profiler` records (summed in time order) on a CPU.

Terms that exist only on a GPU (the CUDA context, the caching allocator's rounding, cuDNN
workspaces) are listed separately, each with where its number comes from, and stay "not measured
on a GPU" until a GPU run has compared them.
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mmlib.config import AUTO, PRESETS, Config, ConfigError
from mmlib.losses import LossWeights, compute_losses
from mmlib.model import END_ID, START_ID, MultimodalModel
from mmlib.tokenizer import SPECIAL_TOKENS

ESTIMATE_TOLERANCE = 0.10  # estimate vs measured peak, as asserted by the tests and the bench
GIB = 2**30
# Card sizes in GiB, as the cards are sold ("80 GB"); torch.cuda reports slightly less.
GPUS: dict[str, float] = {"rtx3090": 24, "a100-40": 40, "a100-80": 80, "h100": 80, "h200": 141}
PRECISIONS = ("fp32", "bf16", "fp16")
NOT_MEASURED = "not measured on a GPU"
CUDA_CONTEXT_BYTES = 512 * 2**20
CUDA_BLOCK_BYTES = 512  # kMinBlockSize in c10/cuda/CUDACachingAllocator.cpp
SAFETY_MARGIN = 0.9  # the finder returns this share of the largest batch that passed
MAX_AUTO_BATCH = 512
TABLE_BATCHES = (1, 8, 64, 512, 4096)  # where an EstimateTable estimates; it interpolates between
# The seed notes' table for its model (batch size -> GB), a guess never measured.
SEED_GUESSED_GB: dict[int, float] = {8: 12, 16: 20, 32: 35, 64: 65}
_CONVOLUTIONS = (torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default)


@dataclass(frozen=True)
class MemoryTerm:
    """One part of the estimate: a name, bytes, and where the number comes from."""

    name: str
    bytes: int
    source: str


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step at its peak, by kind.

    The first six fields are the tensors live at the moment of the peak (so `gradients` and
    `activations` are those live then, not their full sizes); they sum to `allocated`, what
    PyTorch's allocator hands out. `gpu_terms` are the GPU-only additions; `total` is both.
    """

    preset: str
    batch_size: int
    precision: str
    device_type: str
    vocab_size: int
    weights: int
    gradients: int
    optimizer_state: int
    activations: int  # saved for backward
    transient: int  # everything else: outputs, gradients in flight, temporaries
    autocast_copies: int  # low-precision weight copies cached by autocast
    gpu_terms: tuple[MemoryTerm, ...]

    @property
    def allocated(self) -> int:
        """What PyTorch allocates at the peak (the part a CPU measurement can check)."""
        return (
            self.weights
            + self.gradients
            + self.optimizer_state
            + self.activations
            + self.transient
            + self.autocast_copies
        )

    @property
    def total(self) -> int:
        """`allocated` plus the GPU-only terms: what must fit on the card."""
        return self.allocated + sum(term.bytes for term in self.gpu_terms)

    def breakdown(self) -> list[MemoryTerm]:
        """Every part with its source, in the order of the fields."""
        counted = "counted in a training step on fake tensors"
        terms = [
            MemoryTerm("weights", self.weights, f"{counted} (fp32 parameters)"),
            MemoryTerm("gradients", self.gradients, f"{counted} (fp32, live at the peak)"),
            MemoryTerm(
                "optimizer_state",
                self.optimizer_state,
                f"{counted} (AdamW exp_avg and exp_avg_sq; no master copies: the weights "
                "stay fp32 under autocast)",
            ),
            MemoryTerm("activations", self.activations, f"{counted} (saved for backward)"),
            MemoryTerm("transient", self.transient, f"{counted} (other tensors at the peak)"),
        ]
        if self.precision != "fp32":
            terms.append(
                MemoryTerm(
                    "autocast_copies",
                    self.autocast_copies,
                    f"{counted} under CPU autocast ({self.precision}); "
                    + (NOT_MEASURED if self.device_type == "cuda" else "measured on CPU"),
                )
            )
        return terms + list(self.gpu_terms)


@dataclass(frozen=True)
class MemoryMeasurement:
    """The measured peak of one training step on a real device."""

    batch_size: int
    device: str
    precision: str
    peak_allocated: int
    peak_reserved: int | None  # CUDA's caching allocator only
    samples_per_second: float
    method: str


@dataclass(frozen=True)
class BatchSizeRow:
    """One batch size: the estimate, the measurement if one was made, and the card it fits."""

    batch_size: int
    estimate: MemoryEstimate
    measurement: MemoryMeasurement | None
    gpu: str
    gpu_bytes: int
    fits: bool


# ---------------------------------------------------------------- the step both sides run


def resolve_precision(config: Config, precision: str | None, device_type: str) -> str:
    """fp32, bf16 or fp16: `precision` if given, else the config's on `device_type`
    ("auto" with `use_amp` means bf16 on CUDA, as on every card in `GPUS`)."""
    wanted = config.precision if precision is None else precision
    if wanted == "auto":
        return "bf16" if config.use_amp and device_type == "cuda" else "fp32"
    if wanted not in PRECISIONS:
        raise ConfigError(f"precision={wanted!r}: allowed values are {', '.join(PRECISIONS)}")
    return wanted


def default_vocab_size(config: Config) -> int:
    """`config.vocab_size`: the tokenizer keeps at most that many words, so the output layer,
    the embeddings and the logits are never larger than with this size."""
    return config.vocab_size


def sample_batch(
    config: Config, batch_size: int, vocab_size: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """Images in [-1, 1] at the config's size and full-length captions of random words."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch_size, config.image_channels, config.image_size, config.image_size)
    images = torch.rand(shape, generator=generator) * 2 - 1
    length = config.max_caption_length
    tokens = torch.randint(
        len(SPECIAL_TOKENS), vocab_size, (batch_size, length), generator=generator
    )
    tokens[:, 0], tokens[:, -1] = START_ID, END_ID
    return images.to(device), tokens.to(device)


def make_optimizer(model: MultimodalModel, config: Config, device_type: str) -> torch.optim.AdamW:
    """AdamW as the Trainer builds it (fused on CUDA, the per-tensor loop elsewhere)."""
    fused = True if device_type == "cuda" else None
    return torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )


def training_step(
    model: MultimodalModel,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    tokens: Tensor,
    config: Config,
    precision: str,
) -> None:
    """One step as the Trainer takes it: forward and losses (autocast unless fp32), backward,
    gradient clipping, AdamW step, gradients set to None. fp16's GradScaler adds a few scalars
    only and is left out."""
    with autocast_for(images.device.type, precision):
        output = model(images, tokens)
        losses = compute_losses(output, images, tokens, LossWeights.from_config(config))
    losses.total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip or math.inf)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def autocast_for(device_type: str, precision: str) -> AbstractContextManager[Any]:
    """Autocast to bf16 or fp16 on `device_type`; nothing for fp32 (the Trainer's too)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type, dtype=dtype)


# ---------------------------------------------------------------- estimate


class _StorageTracker(TorchDispatchMode):
    """Counts the bytes of live tensor storages (each storage once), and which were live at the
    peak. Storages are numbered as they appear; a weak reference reports each free."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[int, int] = {}  # storage number -> bytes (also after it is freed)
        self.live: set[int] = set()
        self.live_bytes = 0
        self.peak_bytes = 0
        self.at_peak: frozenset[int] = frozenset()
        self.weight_numbers: frozenset[int] = frozenset()
        self.cast_copies: set[int] = set()
        self.conv_input_sizes: list[int] = []  # elements
        self._numbers: dict[int, int] = {}  # id(storage object) -> storage number
        self._refs: dict[int, weakref.ref[torch.UntypedStorage]] = {}

    def number(self, tensor: Tensor) -> int:
        """The storage number of `tensor`, counting its storage if it is new."""
        storage = tensor.untyped_storage()
        key = id(storage)
        if key not in self._numbers:
            number = len(self.sizes)
            self._numbers[key] = number
            self.sizes[number] = storage.nbytes()
            self.live.add(number)
            self.live_bytes += storage.nbytes()
            self._refs[key] = weakref.ref(storage, lambda _, key=key: self._free(key))
        return self._numbers[key]

    def _free(self, key: int) -> None:
        number = self._numbers.pop(key)
        del self._refs[key]
        self.live.discard(number)
        self.live_bytes -= self.sizes[number]

    def reset_peak(self) -> None:
        """Start a new peak from the bytes live now."""
        self.peak_bytes = -1

    def __torch_dispatch__(
        self,
        func: Any,
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func is torch.ops.aten._local_scalar_dense.default:
            # Fake tensors hold no values. The step reads two: the range check of the target
            # images (answer: in range) and AdamW's step count (any positive number will do).
            return False if args[0].dtype == torch.bool else 1
        out = func(*args, **(kwargs or {}))
        outputs = [self.number(t) for t in tree_leaves(out) if isinstance(t, Tensor)]
        if func is torch.ops.aten._to_copy.default and self.number(args[0]) in self.weight_numbers:
            self.cast_copies.update(outputs)
        if func in _CONVOLUTIONS:
            self.conv_input_sizes.append(args[0].numel())
        if self.live_bytes > self.peak_bytes:
            self.peak_bytes = self.live_bytes
            self.at_peak = frozenset(self.live)
        return out


def _fake_model(config: Config, vocab_size: int) -> MultimodalModel:
    """The model with fake CPU parameters: built on the meta device, then given fake storage
    (`to_empty` cannot swap in fake tensors)."""
    with torch.device("meta"):
        model = MultimodalModel(config, vocab_size)
    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None:
                fake = torch.empty(param.shape, dtype=param.dtype)
                module._parameters[name] = torch.nn.Parameter(fake, param.requires_grad)
        for name, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[name] = torch.empty(buffer.shape, dtype=buffer.dtype)
    return model


def estimate_memory(
    config: Config,
    batch_size: int,
    precision: str | None = None,
    device_type: str = "cuda",
    vocab_size: int | None = None,
) -> MemoryEstimate:
    """Bytes of one training step at `batch_size`, by kind, computed on fake tensors.

    `device_type` chooses the optimizer as the Trainer does (fused AdamW on CUDA) and adds the
    GPU-only terms; the step itself runs with CPU kernels' shapes, under CPU autocast for bf16
    and fp16. `vocab_size` defaults to `default_vocab_size(config)`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    precision = resolve_precision(config, precision, device_type)
    vocab_size = default_vocab_size(config) if vocab_size is None else vocab_size
    saved: set[int] = set()
    grads: set[int] = set()
    with FakeTensorMode(), _StorageTracker() as tracker:
        model = _fake_model(config, vocab_size)
        optimizer = make_optimizer(model, config, device_type)
        images, tokens = sample_batch(config, batch_size, vocab_size)
        tracker.weight_numbers = frozenset(tracker.number(p) for p in model.parameters())
        training_step(model, optimizer, images, tokens, config, precision)
        tracker.reset_peak()
        tracker.conv_input_sizes.clear()

        def pack(tensor: Tensor) -> Tensor:
            saved.add(tracker.number(tensor))
            return tensor

        def before_step(*_: Any) -> None:
            grads.update(tracker.number(p.grad) for p in model.parameters() if p.grad is not None)

        hook = optimizer.register_step_pre_hook(before_step)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            training_step(model, optimizer, images, tokens, config, precision)
        hook.remove()
        states = {
            tracker.number(value)
            for state in optimizer.state.values()
            for value in state.values()
            if isinstance(value, Tensor)
        }
    return _classify(
        tracker,
        saved=saved,
        grads=grads,
        states=states,
        fields={
            "preset": config.preset_name,
            "batch_size": batch_size,
            "precision": precision,
            "device_type": device_type,
            "vocab_size": vocab_size,
        },
    )


def _classify(
    tracker: _StorageTracker,
    *,
    saved: set[int],
    grads: set[int],
    states: set[int],
    fields: dict[str, Any],
) -> MemoryEstimate:
    """Split the storages live at the peak by kind (the first kind that matches counts)."""
    groups = {
        "weights": tracker.weight_numbers,
        "optimizer_state": states,
        "gradients": grads,
        "autocast_copies": tracker.cast_copies,
        "activations": saved,
    }
    remaining = set(tracker.at_peak)
    sizes: dict[str, int] = {}
    for name, numbers in groups.items():
        chosen = remaining & numbers
        sizes[name] = sum(tracker.sizes[n] for n in chosen)
        remaining -= chosen
    sizes["transient"] = sum(tracker.sizes[n] for n in remaining)
    gpu_terms = _gpu_terms(tracker, fields["precision"]) if fields["device_type"] == "cuda" else ()
    return MemoryEstimate(**fields, **sizes, gpu_terms=gpu_terms)


def _gpu_terms(tracker: _StorageTracker, precision: str) -> tuple[MemoryTerm, ...]:
    rounding = sum(-tracker.sizes[n] % CUDA_BLOCK_BYTES for n in tracker.at_peak)
    itemsize = 4 if precision == "fp32" else 2
    workspace = max(tracker.conv_input_sizes, default=0) * itemsize
    return (
        MemoryTerm(
            "cuda_context",
            CUDA_CONTEXT_BYTES,
            "allowance: CUDA context with cuBLAS and cuDNN loaded lazily (CUDA 12), outside "
            f"the caching allocator; {NOT_MEASURED}",
        ),
        MemoryTerm(
            "allocator_rounding",
            rounding,
            f"counted: each tensor live at the peak rounded up to {CUDA_BLOCK_BYTES} bytes, as "
            f"the caching allocator does; {NOT_MEASURED}",
        ),
        MemoryTerm(
            "cudnn_workspace",
            workspace,
            "allowance: the largest convolution input of the step in the compute dtype "
            f"(cuDNN's heuristics pick algorithms within what they can allocate); {NOT_MEASURED}",
        ),
    )


@dataclass(frozen=True)
class EstimateTable:
    """Estimates at a few batch sizes, and any batch between them interpolated part by part.

    Past a small batch a step's memory is affine in the batch (for seed-large the interpolation
    from `TABLE_BATCHES` matches `estimate_memory` to 1e-5 from batch 8 on), so a handful of
    estimates answers every batch size at once, as a slider needs.
    """

    estimates: tuple[MemoryEstimate, ...]  # by increasing batch size

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """The batch sizes that were estimated."""
        return tuple(estimate.batch_size for estimate in self.estimates)

    def __call__(self, batch_size: int) -> MemoryEstimate:
        sizes = self.batch_sizes
        if not sizes[0] <= batch_size <= sizes[-1]:
            raise ValueError(f"batch_size={batch_size}: the table covers {sizes[0]}..{sizes[-1]}")
        upper = bisect.bisect_left(sizes, batch_size)
        if sizes[upper] == batch_size:
            return self.estimates[upper]
        return _interpolate(self.estimates[upper - 1], self.estimates[upper], batch_size)


_PARTS = (
    "weights",
    "gradients",
    "optimizer_state",
    "activations",
    "transient",
    "autocast_copies",
)


def _interpolate(low: MemoryEstimate, high: MemoryEstimate, batch_size: int) -> MemoryEstimate:
    """Each part and GPU-only term on the line from `low` to `high`, at `batch_size`."""
    share = (batch_size - low.batch_size) / (high.batch_size - low.batch_size)

    def between(start: int, end: int) -> int:
        return round(start + (end - start) * share)

    parts = {name: between(getattr(low, name), getattr(high, name)) for name in _PARTS}
    terms = tuple(
        replace(term, bytes=between(term.bytes, other.bytes))
        for term, other in zip(low.gpu_terms, high.gpu_terms, strict=True)
    )
    return replace(low, batch_size=batch_size, gpu_terms=terms, **parts)


def estimate_table(
    config: Config,
    precision: str | None = None,
    device_type: str = "cuda",
    batch_sizes: Sequence[int] = TABLE_BATCHES,
) -> EstimateTable:
    """`estimate_memory` at `batch_sizes`, interpolated between them (see `EstimateTable`)."""
    sizes = sorted(set(batch_sizes))
    return EstimateTable(tuple(estimate_memory(config, b, precision, device_type) for b in sizes))


# ---------------------------------------------------------------- measurement


def measure_memory(
    config: Config,
    batch_size: int,
    device: torch.device | str,
    precision: str | None = None,
    vocab_size: int | None = None,
) -> MemoryMeasurement:
    """The peak of a real training step at `batch_size` on `device` (two steps are run; the
    second, with AdamW's state in place, is timed).

    CUDA: `torch.cuda.max_memory_allocated` and `max_memory_reserved` over the second step.
    CPU: the allocation and free events `torch.profiler` records with `profile_memory=True`,
    summed in time order from before the model is built; the largest sum is the peak. Runs on
    one thread, as thread pools can hold their own buffers.
    """
    device = torch.device(device)
    precision = resolve_precision(config, precision, device.type)
    vocab_size = default_vocab_size(config) if vocab_size is None else vocab_size
    if device.type == "cuda":
        return _measure_cuda(config, batch_size, device, precision, vocab_size)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # no profiler start/stop lines on stderr
    with _one_thread(), torch.random.fork_rng(devices=[]):
        activities = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=activities, profile_memory=True) as profiler:
            seconds = _run_steps(config, batch_size, device, precision, vocab_size)
    return MemoryMeasurement(
        batch_size=batch_size,
        device=str(device),
        precision=precision,
        peak_allocated=_profiler_peak(profiler),
        peak_reserved=None,
        samples_per_second=batch_size / seconds,
        method="torch.profiler memory events (profile_memory=True), summed to a peak",
    )


def _run_steps(
    config: Config, batch_size: int, device: torch.device, precision: str, vocab_size: int
) -> float:
    """Build the model and take two training steps; returns the seconds of the second."""
    torch.manual_seed(config.seed)
    model = MultimodalModel(config, vocab_size).to(device)
    optimizer = make_optimizer(model, config, device.type)
    images, tokens = sample_batch(config, batch_size, vocab_size, device)
    training_step(model, optimizer, images, tokens, config, precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    training_step(model, optimizer, images, tokens, config, precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def _measure_cuda(
    config: Config, batch_size: int, device: torch.device, precision: str, vocab_size: int
) -> MemoryMeasurement:
    _free_memory()
    with torch.random.fork_rng(devices=[device]):
        seconds = _run_steps(config, batch_size, device, precision, vocab_size)
    measurement = MemoryMeasurement(
        batch_size=batch_size,
        device=str(device),
        precision=precision,
        peak_allocated=torch.cuda.max_memory_allocated(device),
        peak_reserved=torch.cuda.max_memory_reserved(device),
        samples_per_second=batch_size / seconds,
        method="torch.cuda.max_memory_allocated / max_memory_reserved",
    )
    _free_memory()
    return measurement


def _profiler_peak(profiler: torch.profiler.profile) -> int:
    """The largest running sum of the CPU allocation (+) and free (-) events, in time order."""
    cpu_types = {"CPU", "MKLDNN", "IDEEP"}
    events = [
        event
        for event in profiler.profiler.kineto_results.events()
        if event.name() == "[memory]" and event.device_type().name in cpu_types
    ]
    live = peak = 0
    for event in sorted(events, key=lambda event: event.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- cards, table, batch sizes


def gpu_memory(gpu: str | float) -> tuple[str, int]:
    """(name, bytes) of a card: a name in `GPUS` or a size in GB ("24", 24.0)."""
    if isinstance(gpu, (int, float)) and not isinstance(gpu, bool):
        return f"{gpu:g} GB", _positive_gib(float(gpu))
    name = str(gpu).strip().lower()
    if name in GPUS:
        return name, int(GPUS[name] * GIB)
    try:
        size = float(name.removesuffix("gb").strip())
    except ValueError:
        raise ValueError(
            f"unknown GPU {gpu!r}: known cards are {', '.join(GPUS)}, or give a size in GB"
        ) from None
    return f"{size:g} GB", _positive_gib(size)


def _positive_gib(size: float) -> int:
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"GPU memory {size:g} GB: must be a positive number")
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
) -> int:
    """The largest batch whose estimated total fits (1 - headroom) of a card of `gpu_memory_gb`.

    The headroom is for what the estimate leaves out: the caching allocator's reserved but
    unused blocks, other processes, and the gap between a card's nominal and usable memory.
    `estimate` (batch size -> estimate) replaces `estimate_memory` with `precision` and
    `device_type`, for example with an `EstimateTable` of them.
    """
    if not 0 <= headroom < 1:
        raise ValueError(f"headroom={headroom}: must be in [0, 1)")
    budget = _positive_gib(gpu_memory_gb) * (1 - headroom)

    def total(batch_size: int) -> int:
        if estimate is not None:
            return estimate(batch_size).total
        return estimate_memory(config, batch_size, precision, device_type).total

    smallest = total(1)
    if smallest > budget:
        raise ValueError(
            f"even batch_size=1 needs an estimated {smallest / GIB:.1f} GiB, more than "
            f"{budget / GIB:.1f} GiB ({1 - headroom:.0%} of {gpu_memory_gb:g} GB): "
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
    precision = resolve_precision(config, precision, device.type)
    vocab_size = default_vocab_size(config)

    def passes(batch_size: int) -> bool:
        try:
            _run_steps(config, batch_size, device, precision, vocab_size)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            _free_memory()

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


def scaled_learning_rate(base_lr: float, base_batch: int, batch: int) -> float:
    """The linear scaling rule: the learning rate grows in proportion to the batch (Goyal et al.
    2017, "Accurate, Large Minibatch SGD"), from `base_lr` tuned at `base_batch`."""
    if base_batch < 1 or batch < 1:
        raise ValueError(f"batch sizes {base_batch} and {batch}: must be >= 1")
    return base_lr * batch / base_batch


def accumulation_for(target_batch: int, max_per_step: int) -> tuple[int, int]:
    """(batch_size, grad_accum_steps) for an effective batch of `target_batch` when at most
    `max_per_step` samples fit one forward/backward: the fewest accumulation steps, the batch
    split evenly among them (the effective batch rounds up when the steps do not divide it)."""
    if target_batch < 1 or max_per_step < 1:
        raise ValueError(f"batch sizes {target_batch} and {max_per_step}: must be >= 1")
    steps = math.ceil(target_batch / max_per_step)
    return math.ceil(target_batch / steps), steps


def format_guess_comparison(
    rows: Sequence[BatchSizeRow], guessed_gb: dict[int, float] = SEED_GUESSED_GB
) -> str:
    """The seed's guessed table beside the estimated totals in `rows`, for the batch sizes in
    both (the guess in GB as the seed wrote it, read as GiB like the card sizes)."""
    lines = [f"{'batch':>5}  {'seed guessed':>12}  {'estimated':>9}  {'guess/estimate':>14}"]
    for row in rows:
        if row.batch_size in guessed_gb:
            guess, total = guessed_gb[row.batch_size], row.estimate.total / GIB
            cells = f"{row.batch_size:>5}  {guess:>9.0f} GB  {total:>5.1f} GiB"
            lines.append(f"{cells}  {guess / total:>13.1f}x")
    return "\n".join(lines)
