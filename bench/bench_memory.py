"""Memory estimate against measurement: CPU (profiler) always, GPU where one is present.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/bench_memory.py [--gpu-batch-sizes 8,16,32,64]

CPU: for cpu-tiny and base at batch 8, 16 and 32 (fp32), the estimate of what PyTorch allocates
(fake-tensor step, no GPU-only terms) against the peak of the profiler's allocation and free
events for a real step, and their ratio. Then the estimate alone for seed-large (bf16, for CUDA)
at 8/16/32/64. GPU: the same seed-large sizes against `torch.cuda.max_memory_allocated`, and
the largest batch the finder reaches; without CUDA it prints "not measured on a GPU".
"""

from __future__ import annotations

import argparse
import time

import torch

from mmlib.config import Config
from mmlib.sizing.batch_size import find_max_batch_size
from mmlib.sizing.memory import (
    ESTIMATE_TOLERANCE,
    GIB,
    NOT_MEASURED,
    estimate_memory,
    measure_memory,
)

CPU_CASES = [(preset, batch) for preset in ("cpu-tiny", "base") for batch in (8, 16, 32)]


def cpu_table() -> None:
    """Estimate, profiler-measured peak and ratio for the CPU cases (fp32)."""
    print(f"CPU, fp32, one thread; tolerance +-{ESTIMATE_TOLERANCE:.0%}")
    print(f"{'preset':<10} {'batch':>5} {'estimate MiB':>13} {'measured MiB':>13} {'ratio':>6}")
    for preset, batch_size in CPU_CASES:
        config = Config.preset(preset)
        estimate = estimate_memory(config, batch_size, "fp32", device_type="cpu").allocated
        measured = measure_memory(config, batch_size, "cpu", "fp32").peak_allocated
        ratio = estimate / measured
        flag = "" if abs(ratio - 1) <= ESTIMATE_TOLERANCE else "  OUT OF TOLERANCE"
        print(
            f"{preset:<10} {batch_size:>5} {estimate / 2**20:>13.1f} "
            f"{measured / 2**20:>13.1f} {ratio:>6.3f}{flag}",
            flush=True,
        )


def gpu_table(batch_sizes: list[int]) -> None:
    """seed-large (bf16) estimates; measured and the finder's batch where CUDA is present."""
    config = Config.preset("seed-large")
    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name() if cuda else "none"
    print(f"\nseed-large, bf16, estimated for CUDA (GiB); GPU: {name}")
    print(
        f"{'batch':>5} {'allocated':>10} {'total':>8} {'max_alloc':>10} {'reserved':>9} "
        f"{'ratio':>6} {'est. s':>7}"
    )
    for batch_size in batch_sizes:
        started = time.perf_counter()
        estimate = estimate_memory(config, batch_size, "bf16", device_type="cuda")
        seconds = time.perf_counter() - started
        cells = f"{batch_size:>5} {estimate.allocated / GIB:>10.2f} {estimate.total / GIB:>8.2f}"
        if cuda:
            measured = measure_memory(config, batch_size, "cuda", "bf16")
            reserved = (measured.peak_reserved or 0) / GIB
            ratio = estimate.allocated / measured.peak_allocated
            cells += f" {measured.peak_allocated / GIB:>10.2f} {reserved:>9.2f} {ratio:>6.3f}"
        else:
            cells += f" {NOT_MEASURED:>27}"
        print(f"{cells} {seconds:>7.1f}", flush=True)
    if cuda:
        found = find_max_batch_size(config, "cuda", start=8, max_batch=1024, precision="bf16")
        print(f"largest batch the finder reached (after its margin): {found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu-batch-sizes", default="8,16,32,64")
    parser.add_argument("--skip-cpu", action="store_true", help="only the seed-large section")
    args = parser.parse_args()
    if not args.skip_cpu:
        cpu_table()
    gpu_table([int(part) for part in args.gpu_batch_sizes.split(",")])


if __name__ == "__main__":
    main()
