"""Where a trained run's caption decoder looks: over the validation split, the share of each
subject word's attention on the image that falls inside that subject's box, against the box's
share of the image, and the share that goes to the latent tokens (`mmlib.inference.attention`).

Needs a run trained on the synthetic set, e.g. `make train`'s checkpoints/cpu-tiny.
"""

from __future__ import annotations

import argparse
import time

import torch

from mmlib.data.images import build_image_cache
from mmlib.data.sources import load_split
from mmlib.inference.attention import subject_attention_share
from mmlib.inference.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="cpu-tiny")
    parser.add_argument("--limit", type=int, default=None, help="first N validation records")
    args = parser.parse_args()

    predictor = Predictor.load(args.run)
    config = predictor.config
    records = load_split(config).val[: args.limit]
    images = build_image_cache(
        records, config.image_size, config.resize_mode, config.cache_dir, progress=False
    )
    print(f"{args.run}: {len(records)} validation images, threads {torch.get_num_threads()}")
    for captions in ("generated", "reference"):
        start = time.perf_counter()
        share = subject_attention_share(
            predictor.model, predictor.tokenizer, records, images, captions
        )
        print(f"{captions} captions ({time.perf_counter() - start:.1f} s): {share}")


if __name__ == "__main__":
    main()
