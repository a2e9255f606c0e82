"""`make_run_loaders`: a run's datasets and loaders (STEP 3), this process's share of them."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Subset

from mmlib.data.dataset import CaptionDataset, DeviceLoader, make_loader
from mmlib.data.images import build_image_cache
from mmlib.data.sources import SplitData
from mmlib.data.tokenizer import Tokenizer
from mmlib.training.setup import PreparedRun


class RunLoaders(NamedTuple):
    """The training set (shuffled, augmented) and its loader; the validation set; and
    `train_eval_set`, the training images as evaluation sees them (first caption, no shift) on a
    fixed subset the size of the validation set: train loss in eval mode, comparable to val."""

    train_set: CaptionDataset
    val_set: CaptionDataset
    train_eval_set: Subset[Any]
    train_loader: DataLoader[Any] | DeviceLoader
    val_loader: DataLoader[Any]
    train_eval_loader: DataLoader[Any]


def make_run_loaders(
    run: PreparedRun, split: SplitData, tokenizer: Tokenizer, progress: bool
) -> RunLoaders:
    """The datasets of `split`'s train and val records (their images decoded into the cache)
    and this process's loaders of them: its share of each training batch, and whole
    evaluation batches dealt round-robin (`_val_share`)."""
    config = run.config
    caches = [
        build_image_cache(
            records,
            config.image_size,
            config.resize_mode,
            cache_dir=config.cache_dir,
            progress=progress,
        )
        for records in (split.train, split.val)
    ]
    length = config.max_caption_length
    train_set = CaptionDataset(
        split.train,
        caches[0],
        tokenizer,
        length,
        config.seed,
        max_shift=config.augment_max_shift,
    )
    val_set = CaptionDataset(split.val, caches[1], tokenizer, length, config.seed, train=False)
    train_view = CaptionDataset(split.train, caches[0], tokenizer, length, config.seed, train=False)
    train_eval_set = Subset(train_view, _train_eval_indices(train_set, val_set, config.seed))
    common: dict[str, Any] = {
        "num_workers": config.num_workers,
        "pin_memory": config.pin_memory,
        "device_type": run.device.type,
        "seed": config.seed,
    }
    batch_size = run.batch_size
    drop_last = len(train_set) > batch_size
    per_process = batch_size // run.world_size
    train_loader: DataLoader[Any] | DeviceLoader
    if config.resolve_data_on_device(run.device, run.world_size):
        train_loader = DeviceLoader(
            train_set, per_process, run.device, seed=config.seed, drop_last=drop_last
        )
    else:
        train_loader = make_loader(
            train_set,
            per_process,
            shuffle=True,
            drop_last=drop_last,
            distributed=run.world_size > 1,
            num_replicas=run.world_size,
            rank=run.rank,
            **common,
        )
    val_loader = make_loader(_val_share(run, val_set), batch_size, shuffle=False, **common)
    train_eval_loader = make_loader(
        _val_share(run, train_eval_set), batch_size, shuffle=False, **common
    )
    return RunLoaders(
        train_set, val_set, train_eval_set, train_loader, val_loader, train_eval_loader
    )


def _train_eval_indices(train_set: CaptionDataset, val_set: CaptionDataset, seed: int) -> list[int]:
    """A fixed subset of the training set, as large as the validation set: indices drawn
    (then sorted) by a generator seeded with `seed`, the same on every process."""
    count = min(len(val_set), len(train_set))
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(len(train_set), generator=generator)[:count].tolist())


def _val_share(run: PreparedRun, dataset: CaptionDataset | Subset[Any]) -> Subset[Any]:
    """This process's evaluation batches: whole batches of `batch_size` consecutive samples,
    dealt round-robin, so each sample counts once and every batch (and so its contrastive
    loss) is the same as with one process."""
    size, count = run.batch_size, len(dataset)
    batches = range(run.rank, -(-count // size), run.world_size)
    indices = [i for b in batches for i in range(b * size, min((b + 1) * size, count))]
    return Subset(dataset, indices)
