"""Time `mmlib.data.synthetic.generate` and report how rich its captions are.

    .venv/bin/python bench/bench_synthetic.py [--n 5141 --image-size 128 --out DIR]

The validation split is the course's: the first 10% of a seeded permutation of the indices.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import torch

from mmlib.data.synthetic import METADATA_PATH, caption_report, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5141)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="keep the dataset here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        summary = generate(out, args.n, args.image_size, args.seed, args.workers, progress=False)
        records = json.loads((out / METADATA_PATH).read_text(encoding="utf-8"))
    generator = torch.Generator().manual_seed(args.seed)
    val_ids = set(torch.randperm(args.n, generator=generator)[: math.floor(0.1 * args.n)].tolist())
    report = caption_report(
        [r["caption"] for r in records if r["id"] not in val_ids],
        [r["caption"] for r in records if r["id"] in val_ids],
    )
    print(summary)
    print(f"seconds                         {summary.seconds:.1f}")
    print(f"images/s                        {args.n / summary.seconds:.0f}")
    print(f"distinct captions               {report['distinct_captions']}")
    print(f"vocabulary size                 {report['vocabulary_size']}")
    print(f"val captions unseen in training {report['val_unseen_share']:.3f}")
    print(f"val captions with a bag twin    {report['val_bag_twin_share']:.3f}")


if __name__ == "__main__":
    main()
