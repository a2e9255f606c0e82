"""GPU check (run where a GPU is lent, never in CI): seed-large training speed and memory.

    PYTHONPATH=. python3 bench/gpu_check.py [--steps 100 --warmup 20 --batch-size 16]

Uses only torch and mmlib's model and training step (no data files): images are drawn small on
the GPU and upsampled to 512x512, captions are random token rows of realistic length. Prints, as
each finishes, a plain baseline (fp32, NCHW, no compile) and ours (bf16 autocast,
channels_last, fused AdamW, torch.compile where it helps), each with steps/s, seconds per
4,627-sample epoch and peak memory.
"""

from __future__ import annotations

import argparse
import time

import torch

from mmlib.config import Config
from mmlib.model import MultimodalModel
from mmlib.step import TrainingStep

TRAIN_SAMPLES = 4627
VOCAB = 8000


def make_batch(batch_size: int, config: Config, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Smooth random images in [-1, 1] at the preset's size and caption-like token rows."""
    small = torch.rand(batch_size, 3, 32, 32, device=device) * 2 - 1
    images = torch.nn.functional.interpolate(small, size=config.image_size, mode="bilinear")
    lengths = torch.randint(10, 40, (batch_size,), device=device)
    tokens = torch.randint(4, VOCAB, (batch_size, 42), device=device)
    positions = torch.arange(42, device=device)
    tokens[:, 0] = 1
    tokens = torch.where(positions == lengths[:, None], torch.full_like(tokens, 2), tokens)
    tokens = torch.where(positions > lengths[:, None], torch.zeros_like(tokens), tokens)
    return images, tokens


def run(name: str, args: argparse.Namespace, *, fast: bool) -> None:
    device = torch.device("cuda")
    config = Config.preset("seed-large")
    torch.manual_seed(0)
    model = MultimodalModel(config, VOCAB).to(device)
    images, tokens = make_batch(args.batch_size, config, device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fast or None)
    forward = torch.compile(model) if fast and args.compile else model
    precision = "bf16" if fast else "fp32"
    training_step = TrainingStep(model, optimizer, config, precision, forward=forward)

    def step() -> None:
        training_step([(images, tokens)])

    torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    per_second = args.steps / seconds
    epoch = TRAIN_SAMPLES / args.batch_size / per_second
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(
        f"{name:<42} {per_second:7.2f} steps/s  {epoch:6.1f} s/epoch  peak {peak:5.1f} GiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    run("plain: fp32, NCHW, no compile", args, fast=False)
    torch.cuda.empty_cache()
    run("ours: bf16, channels_last, fused AdamW, compile", args, fast=True)


if __name__ == "__main__":
    main()
