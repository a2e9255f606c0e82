"""GPU check (run where a GPU is lent, never in CI): a trained run's inference on CUDA vs CPU.

    PYTHONPATH=. python3 bench/gpu_inference_check.py --run checkpoints/cpu-tiny [--n 512]

Draws `n` fresh synthetic engravings, captions them with the run on the CPU and on CUDA (greedy
and beam), and prints how many captions agree token for token, how many imagined images agree,
and captions/s and images/s on CUDA.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mmlib.data.images import build_image_cache, to_pixels
from mmlib.data.readers import load_records
from mmlib.data.synthetic import generate
from mmlib.inference.imagine import CANDIDATES
from mmlib.inference.predictor import Predictor


def timed(function, repeats: int = 3) -> float:
    """Best wall time of `repeats` calls, CUDA synchronised."""
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        function()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, default=Path("checkpoints/cpu-tiny"))
    parser.add_argument("--n", type=int, default=512)
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    cpu = Predictor.load(args.run)
    gpu = Predictor.load(args.run, device="cuda")
    config = cpu.config
    with tempfile.TemporaryDirectory() as folder:
        generate(Path(folder), n=args.n, image_size=128, seed=7, progress=False)
        records, _ = load_records(folder)
        images = build_image_cache(records, config.image_size, config.resize_mode, progress=False)
    prompts = [record.captions[0] for record in records]
    for method in ("greedy", "beam"):
        on_cpu = cpu.caption(images, method, batch_size=256)
        on_gpu = gpu.caption(images, method, batch_size=256)
        same = sum(a == b for a, b in zip(on_cpu, on_gpu, strict=True))
        seconds = timed(lambda m=method: gpu.caption(images, m, batch_size=256))
        print(
            f"{method:>6}: {same}/{len(images)} captions identical on CPU and CUDA; "
            f"CUDA {len(images) / seconds:,.0f} captions/s (batch 256)",
            flush=True,
        )
    # Per image: the largest pixel difference. A near-tie between candidates can pick another
    # candidate on CUDA, so count the images that match as well as the largest difference.
    differences = (cpu.imagine(prompts).int() - gpu.imagine(prompts).int()).abs().amax((1, 2, 3))
    seconds = timed(lambda: gpu.imagine(prompts))
    print(
        f"imagine: {int((differences <= 1).sum())}/{len(prompts)} images within 1/255 of the "
        f"CPU's (largest difference {int(differences.max())}); CUDA {len(prompts) / seconds:,.0f} "
        f"images/s ({len(prompts)} captions, {CANDIDATES} candidates each)",
        flush=True,
    )
    pixels = to_pixels(images.cuda())
    seconds = timed(lambda: gpu.model.encode_image(pixels))
    print(f"encode_image: {len(images) / seconds:,.0f} images/s (batch {len(images)})")


if __name__ == "__main__":
    main()
