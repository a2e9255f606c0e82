"""One epoch of a DataLoader over the decoded uint8 cache against decoding every PNG per sample.

    .venv/bin/python bench/bench_loader.py [--n 5141 --image-size 128 --workers 0 --data DIR]

The input is the synthetic set (mmlib.data.synthetic), generated into a temporary folder unless
--data names a seed-format folder; the cache is built fresh in a temporary folder and its build
time is printed separately. Both datasets return the same samples from the same tokens.
Torch runs one intra-op thread by default (--threads), as DataLoader workers do: per-sample
tensors are too small to gain from more, and on a machine whose cores are busy with other work
the fork-join of several threads costs milliseconds per op and swamps what is measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from mmlib.data.dataset import CaptionDataset, make_loader, set_loader_epoch
from mmlib.data.images import build_image_cache, load_image
from mmlib.data.readers import load_records
from mmlib.data.synthetic import generate
from mmlib.data.tokenizer import WordTokenizer

TARGET = 5.0


class DecodingDataset(Dataset[dict[str, Any]]):
    """train_production.py's way: every sample decodes its image file again (tokens as the
    cached set)."""

    def __init__(self, cached: CaptionDataset, image_size: int) -> None:
        self.cached = cached
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.cached)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.cached.records[index].image_path
        image = load_image(path, self.image_size).float().div_(127.5).sub_(1.0)
        row = self.cached.first[index] + self.cached.choice[index]
        return {"image": image, "tokens": self.cached.tokens[row], "index": index}


def epoch_rate(dataset: Dataset[Any], batch_size: int, workers: int) -> tuple[float, float]:
    """(samples per second, seconds) of one shuffled epoch, worker start-up included."""
    loader = make_loader(dataset, batch_size, shuffle=True, num_workers=workers, seed=0)
    set_loader_epoch(loader, 0)
    start = time.perf_counter()
    samples = sum(len(batch["indices"]) for batch in loader)
    seconds = time.perf_counter() - start
    return samples / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5141)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--data", type=Path, default=None, help="a seed-format folder to use")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data or Path(scratch) / "synthetic"
        if args.data is None:
            started = time.perf_counter()
            generate(data_dir, n=args.n, image_size=args.image_size, seed=42, progress=False)
            print(f"generated {args.n} synthetic PNGs in {time.perf_counter() - started:.1f} s")
        records, report = load_records(data_dir, "seed")
        size = args.image_size
        print(f"data: {report.records} images at {data_dir}, loader images {size}x{size}")
        print(f"threads: torch {torch.get_num_threads()}, DataLoader workers {args.workers}")

        started = time.perf_counter()
        images = build_image_cache(records, size, cache_dir=Path(scratch) / "cache", progress=False)
        built = time.perf_counter() - started
        started = time.perf_counter()
        build_image_cache(records, size, cache_dir=Path(scratch) / "cache", progress=False)
        reopened = time.perf_counter() - started
        print(
            f"cache build: {built:.2f} s ({len(records) / built:,.0f} images/s, "
            f"{images.numel() / 2**20:.0f} MiB); reopening it: {reopened:.3f} s"
        )

        tokenizer = WordTokenizer().build_vocab(c for r in records for c in r.captions)
        cached = CaptionDataset(records, images, tokenizer, max_length=100)
        decoding = DecodingDataset(cached, size)
        cached_rate, cached_s = epoch_rate(cached, args.batch_size, args.workers)
        decoding_rate, decoding_s = epoch_rate(decoding, args.batch_size, args.workers)

    ratio = cached_rate / decoding_rate
    print(f"epoch, uint8 cache:    {cached_rate:10,.0f} samples/s ({cached_s:.2f} s)")
    print(f"epoch, decoding files: {decoding_rate:10,.0f} samples/s ({decoding_s:.2f} s)")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"speed-up: {ratio:.1f}x ({verdict} the {TARGET:.0f}x target)")


if __name__ == "__main__":
    main()
