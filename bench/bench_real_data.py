"""Train on a real captioned set and show whether the model uses its images.

    PYTHONPATH=. .venv/bin/python bench/bench_real_data.py [--data DIR --format F]
        [--preset cpu-tiny --epochs N --set seed=7 ...]
        (default data: ../shared/real-samples/flickr8k-200)

Trains the preset on the data (its own train/validation split), then prints: each epoch's
alignment loss in eval mode on the fixed training subset beside its chance level (the loss of a
model that cannot tell the images apart), and retrieval on the validation split with every
caption of every image as a candidate: image->text and text->image recall@1/5/10 beside chance
(what ranking at random gives) and the shuffled baseline (the same model, each image paired with
another image's captions). A model that ignores its images sits at chance and at the baseline.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from mmlib.config import Config, parse_override
from mmlib.data.images import build_image_cache
from mmlib.data.sources import load_split
from mmlib.evaluation.metrics import RECALL_KS, recall_at_k
from mmlib.inference.predictor import Predictor
from mmlib.training.trainer import Trainer

REAL_SAMPLES = Path("../shared/real-samples/flickr8k-200")


def image_to_text_chance(candidates: int, positives: int, k: int) -> float:
    """Chance that `k` captions drawn at random from `candidates` include one of `positives`."""
    misses = math.comb(candidates - positives, k) / math.comb(candidates, k)
    return 1.0 - misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_SAMPLES)
    parser.add_argument("--format", default="auto")
    parser.add_argument("--preset", default="cpu-tiny")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--run", default="real-data")
    parser.add_argument("--checkpoint-dir", default="checkpoints")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a Config override"
    )
    args = parser.parse_args()
    if not args.data.exists():
        if args.data == REAL_SAMPLES:
            print(f"skipped: no data at {REAL_SAMPLES}; pass --data DIR")
            return
        raise SystemExit(f"{args.data}: no such file or folder")

    overrides = {"data_dir": args.data, "data_format": args.format, "run_name": args.run}
    if args.epochs is not None:
        overrides["num_epochs"] = args.epochs
    config = Config.preset(args.preset, checkpoint_dir=args.checkpoint_dir, **overrides)
    config = config.with_overrides(dict(parse_override(text) for text in args.set))
    started = time.perf_counter()
    trainer = Trainer(config, log=lambda _line: None)
    history = trainer.fit()
    minutes = (time.perf_counter() - started) / 60
    print(
        f"{args.preset} (seed {config.seed}) on {args.data}: "
        f"{len(trainer.train_set)} training images, "
        f"{len(history)} epochs, {trainer.global_step} steps, trained in {minutes:.1f} min"
    )
    print("epoch  alignment (eval mode, training subset)  chance  share of chance")
    for row in history:
        loss, chance = row["train_eval_alignment"], row["train_eval_alignment_chance"]
        print(f"{int(row['epoch']):>5}  {loss:>38.4f}  {chance:6.4f}  {loss / chance:15.2f}")

    predictor = Predictor.load(trainer.run_dir, device="cpu")
    records = load_split(config).val
    images = build_image_cache(records, config.image_size, config.resize_mode, progress=False)
    captions = [caption for record in records for caption in record.captions]
    owner = torch.tensor([i for i, record in enumerate(records) for _ in record.captions])
    with torch.no_grad():
        similarity = predictor.embed_images(images) @ predictor.embed_captions(captions).T
    shuffle = torch.randperm(len(records), generator=torch.Generator().manual_seed(0))
    own = owner[None, :] == torch.arange(len(records))[:, None]  # [images, captions]
    per_image = int(own.sum(1).float().mean().round())
    print(f"\nvalidation: {len(records)} images, {len(captions)} captions")
    print("direction     k  recall  chance  shuffled")
    for k in RECALL_KS:
        recall = recall_at_k(similarity, own, k)
        shuffled = recall_at_k(similarity[shuffle], own, k)
        chance = image_to_text_chance(len(captions), per_image, k)
        print(f"image->text {k:>3}  {recall:6.3f}  {chance:6.3f}  {shuffled:8.3f}")
    for k in RECALL_KS:
        recall = recall_at_k(similarity.T, own.T, k)
        shuffled = recall_at_k(similarity[shuffle].T, own.T, k)
        chance = min(k, len(records)) / len(records)
        print(f"text->image {k:>3}  {recall:6.3f}  {chance:6.3f}  {shuffled:8.3f}")


if __name__ == "__main__":
    main()
