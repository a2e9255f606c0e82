"""What a training step costs in memory: estimated without a GPU, measured with one.

The estimate runs the training step itself (`mmlib.model.step.TrainingStep`: forward, losses,
backward, gradient clipping, AdamW) of `MultimodalModel` on fake tensors (`FakeTensorMode`:
shapes and dtypes, no data), so it takes seconds on a CPU for any preset. A dispatch mode counts
every tensor storage the step allocates and frees, and the peak of their sum is the estimate. Two
steps are run and the second is counted, so AdamW's state exists as it does from the second step
of training on.

The measurement runs the same step on real tensors and reads the peak from an independent
source: `torch.cuda.max_memory_allocated` on a GPU, the allocation and free events that
`torch.profiler` records (summed in time order) on a CPU.

For a CUDA estimate the step runs inside `mmlib.sizing.cuda_emulation.cuda_behaviour()`: CUDA's
autocast policy (which ops run in bf16/fp16, which in fp32, which promote) and the attention
kernel CUDA picks (flash or memory-efficient SDPA, which save the log-sum-exp, not the attention
weights) replace the CPU's, and each convolution holds a cuDNN workspace from the caching
allocator while it runs. Terms outside the allocator (the CUDA context) or from its block sizes
are listed separately, each with where its number comes from, and stay "not measured on a GPU"
until a GPU run has compared them.
"""

from __future__ import annotations

import bisect
import gc
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mmlib.config import Config
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import TrainingStep, make_optimizer
from mmlib.sizing.cuda_emulation import cuda_behaviour
from mmlib.tokens import END_ID, SPECIAL_TOKENS, START_ID

ESTIMATE_TOLERANCE = 0.10  # estimate vs measured peak, as asserted by the tests and the bench
GIB = 2**30
PRECISIONS = ("fp32", "bf16", "fp16")
NOT_MEASURED = "not measured on a GPU"
CUDA_CONTEXT_BYTES = 512 * 2**20
CUDA_BLOCK_BYTES = 512  # kMinBlockSize in c10/cuda/CUDACachingAllocator.cpp
CUDNN_WORKSPACE_SOURCE = (
    "allowance, counted while each convolution runs: cuDNN takes its workspace from the caching "
    "allocator for the call (aten/src/ATen/native/cudnn/Conv_v8.cpp), sized here as the call's "
    f"first operand (input, or output gradient in backward); {NOT_MEASURED}"
)
TABLE_BATCHES = (1, 8, 64, 512, 4096)  # where an EstimateTable estimates; it interpolates between
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
    `activations` are those live then, not their full sizes); with `workspace` (a cuDNN
    convolution workspace live at the peak, CUDA only) they sum to `allocated`, what PyTorch's
    allocator hands out. `gpu_terms` are the additions outside it; `total` is both.
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
    workspace: int = 0  # cuDNN convolution workspace live at the peak (CUDA only)

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
            + self.workspace
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
            policy = "CUDA's autocast policy emulated" if self.device_type == "cuda" else "CPU"
            terms.append(
                MemoryTerm(
                    "autocast_copies",
                    self.autocast_copies,
                    f"{counted} under {policy} autocast ({self.precision}); "
                    + (NOT_MEASURED if self.device_type == "cuda" else "measured on CPU"),
                )
            )
        if self.device_type == "cuda":
            terms.append(MemoryTerm("cudnn_workspace", self.workspace, CUDNN_WORKSPACE_SOURCE))
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


# ---------------------------------------------------------------- the step both sides run


def default_vocab_size(config: Config) -> int:
    """`config.vocabulary_limit`: the tokenizer of the config's kind (`vocab_size` words, or
    `bpe_vocab_size` BPE tokens) has at most that many, so the output layer, the embeddings and
    the logits are never larger than with this size."""
    return config.vocabulary_limit


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
        self.count_workspace = False  # a cuDNN workspace per convolution call (CUDA)
        self.workspace_bytes = 0  # the workspace live now
        self.workspace_at_peak = 0
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

            def free(_: object, key: int = key) -> None:
                self._free(key)

            self._refs[key] = weakref.ref(storage, free)
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
            # Fake tensors hold no values. The step's boolean reads each ask whether something is
            # wrong (target images out of range, a non-finite gradient norm): the answer is no.
            # Its one number read is AdamW's step count: any positive number will do.
            return False if args[0].dtype == torch.bool else 1
        if self.count_workspace and func in _CONVOLUTIONS:
            self.workspace_bytes = args[0].numel() * args[0].element_size()
            self.live_bytes += self.workspace_bytes
        out = func(*args, **(kwargs or {}))
        outputs = [self.number(t) for t in tree_leaves(out) if isinstance(t, Tensor)]
        if func is torch.ops.aten._to_copy.default and self.number(args[0]) in self.weight_numbers:
            self.cast_copies.update(outputs)
        if self.live_bytes > self.peak_bytes:
            self.peak_bytes = self.live_bytes
            self.at_peak = frozenset(self.live)
            self.workspace_at_peak = self.workspace_bytes
        self.live_bytes -= self.workspace_bytes
        self.workspace_bytes = 0
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

    `device_type` chooses the optimizer as the Trainer does (fused AdamW on CUDA); for "cuda"
    the step runs as on CUDA (`mmlib.sizing.cuda_emulation.cuda_behaviour`: CUDA's autocast
    policy and attention kernels, on CPU kernels' shapes), counts cuDNN workspaces and adds the
    GPU-only terms. `vocab_size` defaults to `default_vocab_size(config)`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    precision = config.resolve_precision(device_type, precision)
    vocab_size = default_vocab_size(config) if vocab_size is None else vocab_size
    saved: set[int] = set()
    grads: set[int] = set()
    on_cuda = device_type == "cuda"
    emulation = cuda_behaviour() if on_cuda else nullcontext()
    with emulation, FakeTensorMode(), _StorageTracker() as tracker:
        tracker.count_workspace = on_cuda
        model = _fake_model(config, vocab_size)
        optimizer = make_optimizer(model, config, device_type)
        step = TrainingStep(model, optimizer, config, precision)
        images, tokens = sample_batch(config, batch_size, vocab_size)
        tracker.weight_numbers = frozenset(tracker.number(p) for p in model.parameters())
        step([(images, tokens)])
        tracker.reset_peak()

        def pack(tensor: Tensor) -> Tensor:
            saved.add(tracker.number(tensor))
            return tensor

        def before_step(*_: Any) -> None:
            grads.update(tracker.number(p.grad) for p in model.parameters() if p.grad is not None)

        hook = optimizer.register_step_pre_hook(before_step)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            step([(images, tokens)])
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
    sizes: dict[str, Any] = {}  # MemoryEstimate's int fields, by name
    for name, numbers in groups.items():
        chosen = remaining & numbers
        sizes[name] = sum(tracker.sizes[n] for n in chosen)
        remaining -= chosen
    sizes["transient"] = sum(tracker.sizes[n] for n in remaining)
    gpu_terms = _gpu_terms(tracker) if fields["device_type"] == "cuda" else ()
    return MemoryEstimate(
        **fields, **sizes, gpu_terms=gpu_terms, workspace=tracker.workspace_at_peak
    )


def _gpu_terms(tracker: _StorageTracker) -> tuple[MemoryTerm, ...]:
    rounding = sum(-tracker.sizes[n] % CUDA_BLOCK_BYTES for n in tracker.at_peak)
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
    "workspace",
)


def _interpolate(low: MemoryEstimate, high: MemoryEstimate, batch_size: int) -> MemoryEstimate:
    """Each part and GPU-only term on the line from `low` to `high`, at `batch_size`."""
    share = (batch_size - low.batch_size) / (high.batch_size - low.batch_size)

    def between(start: int, end: int) -> int:
        return round(start + (end - start) * share)

    parts: dict[str, Any] = {
        name: between(getattr(low, name), getattr(high, name)) for name in _PARTS
    }
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


@dataclass(frozen=True)
class OpRecord:
    """One aten op of a traced training step: its output dtypes, and the bytes of its outputs
    that autograd saves for backward (each storage counted once, with the op that made it)."""

    op: str
    dtypes: tuple[str, ...]
    saved_bytes: int


class _OpRecorder(TorchDispatchMode):
    """Records each op with its output dtypes; `save` credits a saved tensor's storage to the
    op that produced it (autograd saves inputs before the op it saves them for is dispatched,
    so crediting the producer is the one unambiguous attribution)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []
        self._producer: dict[int, int] = {}  # id(storage) -> record index, while it lives
        self._credited: set[int] = set()
        self._refs: dict[int, weakref.ref[torch.UntypedStorage]] = {}

    def __torch_dispatch__(
        self,
        func: Any,
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func.namespace == "prim":  # fake tensors' metadata queries, not kernels
            return out
        tensors = [t for t in tree_leaves(out) if isinstance(t, Tensor)]
        for tensor in tensors:
            storage = tensor.untyped_storage()
            key = id(storage)
            if key not in self._producer:
                self._producer[key] = len(self.records)

                def forget(_: object, key: int = key) -> None:
                    self._forget(key)

                self._refs[key] = weakref.ref(storage, forget)
        dtypes = tuple(str(t.dtype).removeprefix("torch.") for t in tensors)
        self.records.append({"op": str(func), "dtypes": dtypes, "saved_bytes": 0})
        return out

    def _forget(self, key: int) -> None:
        self._producer.pop(key, None)
        self._refs.pop(key, None)
        self._credited.discard(key)

    def save(self, tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key not in self._credited and key in self._producer:  # not a parameter
            self._credited.add(key)
            self.records[self._producer[key]]["saved_bytes"] += storage.nbytes()
        return tensor


def trace_step_ops(
    config: Config,
    batch_size: int,
    precision: str,
    device: torch.device | str = "cuda",
    *,
    emulate: bool = False,
    vocab_size: int | None = None,
) -> list[OpRecord]:
    """Every aten op of one training step (the second, with AdamW's state in place), in order,
    with its output dtypes and the bytes saved for backward after it.

    On `device` with real tensors, or with `emulate` the estimator's CUDA emulation on fake CPU
    tensors (what `estimate_memory(..., device_type="cuda")` runs), so a GPU's trace and the
    emulation can be compared op by op.
    """
    vocab_size = default_vocab_size(config) if vocab_size is None else vocab_size
    device = torch.device("cpu" if emulate else device)
    device_type = "cuda" if emulate else device.type
    recorder = _OpRecorder()
    # Fake tensors hold no values: the tracker answers the step's reads of them.
    fake = (cuda_behaviour(), FakeTensorMode(), _StorageTracker())
    contexts = fake if emulate else (nullcontext(),) * 3
    with contexts[0], contexts[1], contexts[2], torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if emulate:
            model = _fake_model(config, vocab_size)
        else:
            model = MultimodalModel(config, vocab_size).to(device)
        optimizer = make_optimizer(model, config, device_type)
        step = TrainingStep(model, optimizer, config, precision)
        images, tokens = sample_batch(config, batch_size, vocab_size, device)
        step([(images, tokens)])
        with recorder, torch.autograd.graph.saved_tensors_hooks(recorder.save, lambda t: t):
            step([(images, tokens)])
    return [OpRecord(**record) for record in recorder.records]


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
    precision = config.resolve_precision(device, precision)
    vocab_size = default_vocab_size(config) if vocab_size is None else vocab_size
    if device.type == "cuda":
        return _measure_cuda(config, batch_size, device, precision, vocab_size)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # no profiler start/stop lines on stderr
    with _one_thread(), torch.random.fork_rng(devices=[]):
        activities = [torch.profiler.ProfilerActivity.CPU]
        with torch.profiler.profile(activities=activities, profile_memory=True) as profiler:
            seconds = run_steps(config, batch_size, device, precision, vocab_size)
    return MemoryMeasurement(
        batch_size=batch_size,
        device=str(device),
        precision=precision,
        peak_allocated=_profiler_peak(profiler),
        peak_reserved=None,
        samples_per_second=batch_size / seconds,
        method="torch.profiler memory events (profile_memory=True), summed to a peak",
    )


def run_steps(
    config: Config, batch_size: int, device: torch.device, precision: str, vocab_size: int
) -> float:
    """Build the model and take two training steps; returns the seconds of the second."""
    torch.manual_seed(config.seed)
    model = MultimodalModel(config, vocab_size).to(device)
    step = TrainingStep(model, make_optimizer(model, config, device.type), config, precision)
    images, tokens = sample_batch(config, batch_size, vocab_size, device)
    step([(images, tokens)])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    step([(images, tokens)])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def _measure_cuda(
    config: Config, batch_size: int, device: torch.device, precision: str, vocab_size: int
) -> MemoryMeasurement:
    free_memory()
    with torch.random.fork_rng(devices=[device]):
        seconds = run_steps(config, batch_size, device, precision, vocab_size)
    measurement = MemoryMeasurement(
        batch_size=batch_size,
        device=str(device),
        precision=precision,
        peak_allocated=torch.cuda.max_memory_allocated(device),
        peak_reserved=torch.cuda.max_memory_reserved(device),
        samples_per_second=batch_size / seconds,
        method="torch.cuda.max_memory_allocated / max_memory_reserved",
    )
    free_memory()
    return measurement


def _profiler_peak(profiler: torch.profiler.profile) -> int:
    """The largest running sum of the CPU allocation (+) and free (-) events, in time order."""
    cpu_types = {"CPU", "MKLDNN", "IDEEP"}
    assert profiler.profiler is not None  # both set once the profile has stopped
    results = profiler.profiler.kineto_results
    assert results is not None
    events = [
        event
        for event in results.events()
        if event.name() == "[memory]" and event.device_type().name in cpu_types
    ]
    live = peak = 0
    for event in sorted(events, key=lambda event: event.start_ns()):
        live += event.nbytes()  # type: ignore[attr-defined]  # missing from torch's stub
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


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
