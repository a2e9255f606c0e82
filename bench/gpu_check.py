"""The GPU check: memory calibration, training speed with MFU, the finder, training.

    PYTHONPATH=. python3 bench/gpu_check.py OUT            # on a GPU machine (make gpu-check)
    PYTHONPATH=. python3 bench/gpu_check.py OUT --device cpu --tiny    # the same run, in seconds

One run, each part written into the folder OUT as soon as it is done, so a late failure keeps
what came before:

1. `gpu_memory.json`: the calibration file's records (mmlib/sizing/calibration/) plus this run's
   peaks (`max_memory_allocated`, `max_memory_reserved`) of one training step for each preset,
   precision and batch, with today's estimate beside each (copy it over the package's file to
   calibrate); `ops.json`: one step op by op (output dtypes, bytes saved for backward) on the
   device and under the estimator's CUDA emulation, and where they differ.
2. `speed`: the plain path (fp32, NCHW, AdamW's default loop, the DataLoader) against the fast
   one (bf16 autocast, channels_last, fused AdamW, torch.compile, the data on the device; its
   tokens padded to max_caption_length, so that compile sees one shape and does not recompile
   for each batch's longest caption), each with its warm-up timed apart; samples/s, seconds per
   4,627-sample epoch, and MFU (FLOPs per sample counted by torch.utils.flop_counter x
   samples/s / the card's dense bf16 peak); then
   each fast setting alone at batch 16, and a validation pass and a checkpoint write apart;
   `loss_parity`: the plain path and the Trainer's fast path (`Config.fast_path`) trained 300
   steps (`--parity-steps`) at batch 16 from the same weights on the same batches, and the
   largest relative difference of their smoothed total-loss curves (bar: 2%).
3. `finder`: the batch `--batch-size auto` would train seed-large at.
4. `train`: `python -m mmlib train --preset seed-large --epochs 1` on the drawn data (without
   fitting imagine.pt), which must end by evaluating; its log is train.log.

`results.json` holds every figure, `results.txt` the short table. The data (1,024 + 64 test
synthetic engravings at the preset's size by default) is drawn on the machine: no network.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from mmlib.checkpoint import save_checkpoint
from mmlib.config import PRESETS, Config, parse_override
from mmlib.data import synthetic
from mmlib.data.dataset import DeviceLoader, make_loader, set_loader_epoch
from mmlib.evaluation.curves import ema, smoothed_relative_gap
from mmlib.files import atomic_write_text
from mmlib.model.multimodal import MultimodalModel
from mmlib.model.step import TrainingStep, make_optimizer
from mmlib.sizing.batch_size import find_max_batch_size
from mmlib.sizing.gpu_calibration import CALIBRATION_FILE as CALIBRATION
from mmlib.sizing.memory import (
    GIB,
    estimate_table,
    free_memory,
    measure_memory,
    sample_batch,
    trace_step_ops,
)
from mmlib.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
EPOCH_SAMPLES = 4627  # the training split of the 5,141 engravings, so s/epoch reads as theirs
# Dense (no sparsity) bf16 tensor-core peaks, FLOP/s, from NVIDIA's data sheets: H100 SXM and
# H200 SXM 989.4 TFLOP/s (half the "with sparsity" 1,979), H100 PCIe 756, A100 312.
BF16_PEAKS = {"H100 PCIe": 756e12, "H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}
# The tiny run (`--tiny`): a few-thousand-parameter model, for the CPU test of this script.
TINY = {**PRESETS["tiny"], "vocab_size": 200, "num_workers": 0}


def bf16_peak(card: str) -> float | None:
    """The card's dense bf16 peak in FLOP/s from `BF16_PEAKS` (first name it contains)."""
    return next((peak for name, peak in BF16_PEAKS.items() if name in card), None)


class Check:
    """The run's settings, its output folder and the results written so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(args.device)
        on_cuda = self.device.type == "cuda"
        self.card = torch.cuda.get_device_name(self.device) if on_cuda else "cpu"
        self.overrides = dict(TINY) if args.tiny else {}
        self.overrides.update(dict(parse_override(text) for text in args.set))
        self.results: dict[str, Any] = {"card": self.card, "torch": torch.__version__}
        self.lines: list[str] = [f"{self.card}, torch {torch.__version__}"]
        self.scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.data_dir: Path | None = None  # drawn by prepare_data

    def config(self, preset: str, **overrides: Any) -> Config:
        return Config.preset(preset, **{**self.overrides, **overrides})

    def write(self, name: str, value: Any, *lines: str) -> None:
        """Record one part's results and rewrite results.json and results.txt."""
        self.results[name] = value
        self.lines += lines
        atomic_write_text(self.out / "results.json", json.dumps(self.results, indent=1) + "\n")
        atomic_write_text(self.out / "results.txt", "\n".join(self.lines) + "\n")
        print("\n".join(lines), flush=True)


# ---------------------------------------------------------------- 1. memory


def calibrate(check: Check) -> None:
    """Measured peaks beside today's estimates, as calibration records (written after each)."""
    args = check.args
    calibration = json.loads(CALIBRATION.read_text())
    today = time.strftime("%Y-%m-%d")
    source = "bench/gpu_check.py " + " ".join(sys.argv[1:])
    lines = ["memory (GiB): preset precision batch  estimated  allocated  ratio  reserved"]
    for preset, precision in itertools.product(args.presets, args.precisions):
        config = check.config(preset)
        table = estimate_table(
            config, precision, check.device.type, (min(args.batches), max(args.batches))
        )
        for batch in args.batches:
            estimate = table(batch)
            record = {
                "card": check.card,
                "torch": torch.__version__,
                "preset": preset,
                "precision": precision,
                "batch_size": batch,
                "max_memory_allocated_gib": None,
                "max_memory_reserved_gib": None,
                "estimated_allocated_gib": round(estimate.allocated / GIB, 4),
                "estimate_over_allocated": None,
                "recorded": today,
                "source": source,
                "notes": "",
            }
            try:
                measured = measure_memory(config, batch, check.device, precision)
            except torch.OutOfMemoryError:
                record["notes"] = "out of memory"
            else:
                allocated = measured.peak_allocated / GIB
                reserved = measured.peak_reserved and measured.peak_reserved / GIB
                record["max_memory_allocated_gib"] = round(allocated, 4)
                record["max_memory_reserved_gib"] = reserved and round(reserved, 4)
                record["estimate_over_allocated"] = round(estimate.allocated / GIB / allocated, 4)
                if check.device.type != "cuda":
                    record["notes"] = f"CPU: {measured.method}"
            free_memory()
            calibration["records"].append(record)
            atomic_write_text(
                check.out / "gpu_memory.json", json.dumps(calibration, indent=1) + "\n"
            )
            lines.append(_memory_line(record))
    new = calibration["records"][-len(args.presets) * len(args.precisions) * len(args.batches) :]
    check.write("memory", new, *lines)


def _memory_line(record: dict[str, Any]) -> str:
    def gib(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    return (
        f"  {record['preset']:>10} {record['precision']:>4} {record['batch_size']:>5}"
        f"  {gib(record['estimated_allocated_gib']):>9}"
        f"  {gib(record['max_memory_allocated_gib']):>9}"
        f"  {gib(record['estimate_over_allocated']):>5}"
        f"  {gib(record['max_memory_reserved_gib']):>8}"
    )


def compare_ops(check: Check) -> None:
    """One step op by op on the device and under the emulation: ops.json and a summary."""
    args = check.args
    config = check.config(args.speed_preset)
    precision = args.precisions[-1]
    batch = min(args.batches)
    device = trace_step_ops(config, batch, precision, check.device)
    emulated = trace_step_ops(config, batch, precision, emulate=True)
    free_memory()

    by_op = _by_op(device, emulated)
    differ = {name: sides for name, sides in by_op.items() if sides[0] != sides[1]}
    document = {
        "preset": args.speed_preset,
        "precision": precision,
        "batch_size": batch,
        # op -> [device, emulated], each [count, sorted output dtypes, bytes saved for backward]
        "by_op_that_differ": differ,
        "device": [vars(op) for op in device],
        "emulated": [vars(op) for op in emulated],
    }
    atomic_write_text(check.out / "ops.json", json.dumps(document, indent=1) + "\n")
    saved = [sum(op.saved_bytes for op in ops) / GIB for ops in (device, emulated)]
    summary = {
        "ops": [len(device), len(emulated)],
        "saved_gib": [round(gib, 4) for gib in saved],
        "ops_that_differ": sorted(differ),
    }
    check.write(
        "ops",
        summary,
        f"ops ({args.speed_preset} {precision} batch {batch}, device / emulated): "
        f"{len(device)} / {len(emulated)} ops, saved for backward {saved[0]:.3f} / "
        f"{saved[1]:.3f} GiB; {len(differ)} ops differ in count, dtypes or saved bytes (ops.json)",
    )


def _by_op(*traces: list[Any]) -> dict[str, list[list[Any]]]:
    """For each op name: per trace, [count, its output dtypes (sorted), bytes saved]."""
    names = sorted({op.op for trace in traces for op in trace})
    table: dict[str, list[list[Any]]] = {name: [] for name in names}
    for trace in traces:
        for name in names:
            ops = [op for op in trace if op.op == name]
            dtypes = sorted({dtype for op in ops for dtype in op.dtypes})
            table[name].append([len(ops), dtypes, sum(op.saved_bytes for op in ops)])
    return table


# ---------------------------------------------------------------- 2. speed


def prepare_data(check: Check) -> Trainer:
    """Draw the synthetic data at the speed preset's size; a Trainer prepared on it."""
    args = check.args
    config = check.config(args.speed_preset)
    data = check.scratch / "data"
    started = time.perf_counter()
    synthetic.generate(
        data,
        n=args.images,
        image_size=config.image_size,
        seed=1,
        progress=False,
        test_n=args.test_images,
        workers=os.cpu_count(),
    )
    drawn = time.perf_counter() - started
    check.data_dir = data
    trainer = Trainer(
        check.config(
            args.speed_preset,
            data_dir=data,
            checkpoint_dir=check.scratch / "checkpoints",
            cache_dir=check.scratch / "cache",
            device=str(check.device),
            data_on_device="off",
        ),
        log=lambda _line: None,
        progress=False,
    )
    trainer.prepare()
    check.write(
        "data",
        {"images": args.images, "test_images": args.test_images, "seconds": round(drawn, 1)},
        f"data: {args.images} + {args.test_images} test images at {config.image_size} px "
        f"drawn in {drawn:.1f} s",
    )
    return trainer


def _batches(trainer: Trainer, batch: int, device_data: bool) -> Iterator[dict[str, Tensor]]:
    """The training set's batches, epoch after epoch, from the device or from a DataLoader
    (the same batches for the same seed)."""
    config, device = trainer.config, trainer.device
    if device_data:
        loader: Any = DeviceLoader(
            trainer.train_set, batch, device, seed=config.seed, drop_last=True
        )
    else:
        loader = make_loader(
            trainer.train_set,
            batch,
            shuffle=True,
            num_workers=config.num_workers,
            pin_memory=True,
            device_type=device.type,
            seed=config.seed,
            drop_last=True,
        )
    for epoch in itertools.count():
        set_loader_epoch(loader, epoch)
        yield from loader


def time_training(
    check: Check,
    trainer: Trainer,
    batch: int,
    *,
    bf16: bool,
    channels_last: bool,
    fused: bool,
    compiled: bool,
    device_data: bool,
) -> dict[str, Any]:
    """Warm-up steps, then timed steps, of one path; samples/s, s/epoch, FLOPs and MFU."""
    args, device, config = check.args, check.device, trainer.config
    vocab = len(trainer.tokenizer)
    torch.manual_seed(config.seed)
    model = MultimodalModel(config, vocab).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=True if fused else None,
    )
    precision = "bf16" if bf16 else "fp32"
    flops = _flops_per_sample(model, optimizer, config, precision, batch, vocab, device)
    if compiled and not channels_last:
        raise ValueError("compiled=True needs channels_last=True (the Trainer's fast path)")
    step = TrainingStep(model, optimizer, config, precision, fast=channels_last, compiled=compiled)
    batches = _batches(trainer, batch, device_data)

    def run(steps: int) -> float:
        _synchronize(device)
        started = time.perf_counter()
        for batch_data in itertools.islice(batches, steps):
            step([(batch_data["images"], batch_data["tokens"])])
        _synchronize(device)
        return time.perf_counter() - started

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    warmup = run(args.warmup)
    seconds = run(args.steps)
    per_second = args.steps * batch / seconds
    peak = bf16_peak(check.card) if bf16 and device.type == "cuda" else None
    result = {
        "batch_size": batch,
        "warmup_steps": args.warmup,
        "warmup_seconds": round(warmup, 3),
        "steps": args.steps,
        "samples_per_second": round(per_second, 2),
        "seconds_per_epoch": round(EPOCH_SAMPLES / per_second, 3),
        "flops_per_sample": flops,
        "mfu": None if peak is None else round(flops * per_second / peak, 4),
        "peak_allocated_gib": (
            round(torch.cuda.max_memory_allocated(device) / GIB, 3)
            if device.type == "cuda"
            else None
        ),
    }
    return result


def _flops_per_sample(
    model: MultimodalModel,
    optimizer: torch.optim.Optimizer,
    config: Config,
    precision: str,
    batch: int,
    vocab: int,
    device: torch.device,
) -> float:
    """FLOPs of one training step (forward, losses, backward) per sample, counted by
    torch.utils.flop_counter on the eager model (the optimizer's elementwise work is not
    counted, as MFU conventionally leaves it out)."""
    images, tokens = sample_batch(config, batch, vocab, device)
    step = TrainingStep(model, optimizer, config, precision)
    with FlopCounterMode(display=False) as counter:
        step([(images, tokens)])
    optimizer.state.clear()
    return counter.get_total_flops() / batch


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PATHS: dict[str, dict[str, bool]] = {
    "plain: fp32, NCHW, AdamW loop, DataLoader": {
        "bf16": False,
        "channels_last": False,
        "fused": False,
        "compiled": False,
        "device_data": False,
    },
    "fast: bf16, channels_last, fused AdamW, compile, data on device": {
        "bf16": True,
        "channels_last": True,
        "fused": True,
        "compiled": True,
        "device_data": True,
    },
}
# Each fast setting alone on top of the plain path (no compile), at the batch that was slower.
# channels_last is TrainingStep's fast step, which also pads the tokens to max_caption_length.
ABLATION: dict[str, dict[str, bool]] = {
    "+ data on device": {"device_data": True},
    "+ bf16": {"device_data": True, "bf16": True},
    "+ bf16, channels_last": {"device_data": True, "bf16": True, "channels_last": True},
    "+ bf16, channels_last, fused": {
        "device_data": True,
        "bf16": True,
        "channels_last": True,
        "fused": True,
    },
}


def speed(check: Check, trainer: Trainer) -> None:
    """The two paths side by side at the speed batch, then the ablation at batch 16."""
    args = check.args
    fused_ok = check.device.type == "cuda"
    rows: dict[str, Any] = {}
    header = "speed: path  batch  samples/s  s/epoch  warm-up s  MFU"
    lines = [header]
    runs = [(name, args.speed_batch, flags) for name, flags in PATHS.items()]
    plain = PATHS["plain: fp32, NCHW, AdamW loop, DataLoader"]
    runs += [
        (f"batch {args.ablation_batch} {name}", args.ablation_batch, {**plain, **flags})
        for name, flags in ABLATION.items()
    ]
    for name, batch, flags in runs:
        if flags["compiled"] and not args.compile:
            name += " (compile off)"
        if flags["fused"] and not fused_ok:
            name += " (AdamW fused on CUDA only)"
        flags = {
            **flags,
            "fused": flags["fused"] and fused_ok,
            "compiled": flags["compiled"] and args.compile,
        }
        try:
            rows[name] = time_training(check, trainer, batch, **flags)
        except Exception as error:  # one failing path must not hide the others
            rows[name] = {"error": f"{type(error).__name__}: {error}"}
            lines.append(f"  {name}: {rows[name]['error']}")
            continue
        finally:
            free_memory()
        row = rows[name]
        mfu = "-" if row["mfu"] is None else f"{row['mfu']:.1%}"
        lines.append(
            f"  {name}  {batch}  {row['samples_per_second']:.1f}  {row['seconds_per_epoch']:.2f}"
            f"  {row['warmup_seconds']:.1f}  {mfu}"
        )
    rows["apart"] = _validation_and_checkpoint(trainer)
    lines.append(
        f"  apart: validation pass {rows['apart']['validation_seconds']:.2f} s, "
        f"checkpoint write {rows['apart']['checkpoint_seconds']:.2f} s"
    )
    check.write("speed", rows, *lines)


def _validation_and_checkpoint(trainer: Trainer) -> dict[str, float]:
    """Seconds of one validation pass and of one last.pt-sized checkpoint write."""
    _synchronize(trainer.device)
    started = time.perf_counter()
    trainer.validate()
    _synchronize(trainer.device)
    validated = time.perf_counter()
    state = {"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict()}
    save_checkpoint(state, trainer.run_dir / "timing.pt")
    written = time.perf_counter()
    (trainer.run_dir / "timing.pt").unlink()
    return {
        "validation_seconds": round(validated - started, 3),
        "checkpoint_seconds": round(written - validated, 3),
    }


# The parity bar: the fast path's smoothed total loss within 2% of the plain path's, relative.
PARITY_BAR = 0.02
# EMA weight 0.1 per step (ema's smoothing 0.9): at batch 16 the per-step loss scatters by
# several percent from batch to batch, which averaging about the last 10 steps brings well under
# the bar, while the smoothed curve still follows the loss's fall over a few hundred steps (its
# lag is the same on both paths).
PARITY_SMOOTHING = 0.9
# The first tenth of the steps are left out: there the loss falls fastest, so the runs drifting
# a step apart reads as a large relative difference that says nothing about where they end.
PARITY_BURN_IN = 0.1


def loss_parity(check: Check, trainer: Trainer) -> None:
    """The plain and the fast path trained from the same initial weights on the same batches;
    the largest relative difference of their smoothed total-loss curves after the burn-in."""
    args = check.args
    curves: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for name, fast in (("plain", False), ("fast", True)):
        started = time.perf_counter()
        curves[name] = _loss_curve(check, trainer, fast)
        seconds[name] = round(time.perf_counter() - started, 1)
        free_memory()
    burn_in = int(args.parity_steps * PARITY_BURN_IN)
    gap = smoothed_relative_gap(curves["plain"], curves["fast"], PARITY_SMOOTHING, burn_in)
    passed = gap <= PARITY_BAR
    ends = [ema(curves[name], PARITY_SMOOTHING)[-1] for name in ("plain", "fast")]
    fast_name = _fast_path_name(check)
    check.write(
        "loss_parity",
        {
            "steps": args.parity_steps,
            "batch_size": args.parity_batch,
            "fast_path": fast_name,
            "ema_weight": round(1 - PARITY_SMOOTHING, 3),
            "burn_in_steps": burn_in,
            "largest_relative_gap": round(gap, 5),
            "bar": PARITY_BAR,
            "pass": passed,
            "smoothed_final_loss": {"plain": round(ends[0], 5), "fast": round(ends[1], 5)},
            "seconds": seconds,
            "total_loss": {name: [round(v, 5) for v in curve] for name, curve in curves.items()},
        },
        f"loss parity: plain vs fast ({fast_name}), {args.parity_steps} steps at batch "
        f"{args.parity_batch}: smoothed total loss at the end {ends[0]:.4f} / {ends[1]:.4f}; "
        f"largest relative gap after step {burn_in} {gap:.2%} (bar {PARITY_BAR:.0%}): "
        f"{'pass' if passed else 'FAIL'}",
    )


def _loss_curve(check: Check, trainer: Trainer, fast: bool) -> list[float]:
    """The total loss of each of `--parity-steps` steps on the plain path (fp32, AdamW's
    default loop, the DataLoader) or on the Trainer's fast path (its precision, its optimizer,
    the data on the device, `TrainingStep(fast=True)`), from the seed's initial weights."""
    args, config, device = check.args, trainer.config, check.device
    torch.manual_seed(config.seed)
    model = MultimodalModel(config, len(trainer.tokenizer)).to(device)
    if fast:
        precision = config.resolve_precision(device)
        optimizer = make_optimizer(model, config, device.type)
    else:
        precision = "fp32"
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
    step = TrainingStep(model, optimizer, config, precision, fast=fast, compiled=args.compile)
    batches = _batches(trainer, args.parity_batch, device_data=fast)
    torch.manual_seed(config.seed)  # the same dropout draws on both paths
    losses = [
        step([(data["images"], data["tokens"])]).means[0]
        for data in itertools.islice(batches, args.parity_steps)
    ]
    return torch.stack(losses).tolist()


def _fast_path_name(check: Check) -> str:
    """The fast path's settings on this run's device (bf16 and fused AdamW on CUDA only)."""
    on_cuda = check.device.type == "cuda"
    settings = ["bf16" if on_cuda else "fp32", "channels_last"]
    settings += ["fused AdamW"] if on_cuda else []
    settings += ["compile"] if check.args.compile else []
    return ", ".join([*settings, "data on device"])


# ---------------------------------------------------------------- 3. finder, 4. training


def finder(check: Check) -> None:
    config = check.config(check.args.speed_preset)
    precision = "bf16" if check.device.type == "cuda" else None
    started = time.perf_counter()
    batch = find_max_batch_size(
        config, check.device, max_batch=check.args.finder_max, precision=precision
    )
    seconds = time.perf_counter() - started
    check.write(
        "finder",
        {"batch_size": batch, "seconds": round(seconds, 1), "max_batch": check.args.finder_max},
        f"finder: batch {batch} for {check.args.speed_preset} ({seconds:.0f} s)",
    )


def train_and_evaluate(check: Check) -> None:
    """`python -m mmlib train --preset P --epochs 1` on the drawn data; it must evaluate."""
    args = check.args
    if check.data_dir is None:
        raise RuntimeError("no data was drawn (see the speed part's error)")
    runs = check.scratch / "runs"
    command = [
        sys.executable,
        "-m",
        "mmlib",
        "train",
        "--preset",
        args.speed_preset,
        "--epochs",
        "1",
        "--data",
        str(check.data_dir),
        "--device",
        str(check.device),
        "--no-imagine",
        "--run",
        "gpu-check",
        "--set",
        f"checkpoint_dir={runs}",
        "--set",
        f"cache_dir={check.scratch / 'cache'}",
    ]
    for name, value in check.overrides.items():
        command += ["--set", f"{name}={value}"]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=args.train_timeout
    )
    seconds = time.perf_counter() - started
    (check.out / "train.log").write_text(done.stdout + done.stderr)
    metrics_file = runs / "gpu-check" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    evaluated = done.returncode == 0 and metrics is not None
    check.write(
        "train",
        {
            "returncode": done.returncode,
            "seconds": round(seconds, 1),
            "evaluated": evaluated,
            "metrics": metrics,
        },
        f"train: python -m mmlib train --preset {args.speed_preset} --epochs 1: "
        f"exit {done.returncode}, "
        f"{'evaluated (metrics.json)' if evaluated else 'NOT evaluated'} in {seconds:.0f} s",
    )


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for results.json, results.txt, gpu_memory.json, ...")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the tiny model (for the CPU test)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--presets", type=_names, default=["seed-large", "base"])
    parser.add_argument("--precisions", type=_names, default=["fp32", "bf16"])
    parser.add_argument("--batches", type=_numbers, default=[8, 16, 32, 64])
    parser.add_argument("--speed-preset", default="seed-large")
    parser.add_argument("--speed-batch", type=int, default=64)
    parser.add_argument("--ablation-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--parity-steps", type=int, default=300, help="steps of the loss parity")
    parser.add_argument("--parity-batch", type=int, default=16)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--test-images", type=int, default=64)
    parser.add_argument("--finder-max", type=int, default=512)
    parser.add_argument("--train-timeout", type=int, default=240)
    return parser.parse_args(argv)


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def _numbers(text: str) -> list[int]:
    return [int(number) for number in _names(text)]


PARTS: tuple[Callable[[Check], None], ...] = (calibrate, compare_ops)


def main(argv: list[str] | None = None) -> int:
    """Run every part; a part that fails is recorded and the rest still run. Status 1 if any
    part failed."""
    check = Check(parse_args(argv))
    failed = []
    trainer: Trainer | None = None

    def attempt(name: str, part: Callable[[], None]) -> None:
        try:
            part()
        except Exception:
            failed.append(name)
            check.write(f"{name}_error", traceback.format_exc(), f"{name}: FAILED (results.json)")

    for part in PARTS:
        attempt(part.__name__, lambda part=part: part(check))

    def data_and_speed() -> None:
        nonlocal trainer
        trainer = prepare_data(check)
        speed(check, trainer)

    attempt("speed", data_and_speed)

    def parity() -> None:
        if trainer is None:
            raise RuntimeError("no data was drawn (see the speed part's error)")
        loss_parity(check, trainer)

    attempt("loss_parity", parity)
    trainer = None  # its model and data off the device before the finder
    free_memory()
    attempt("finder", lambda: finder(check))
    attempt("train", lambda: train_and_evaluate(check))
    check.write("failed", failed, f"failed parts: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
