"""Tensors for training: `CaptionDataset` (images from the cache, captions tokenized once, a
seeded caption and shift per epoch), collation and loaders: a DataLoader, or `DeviceLoader`,
which keeps the training set on the GPU and gives the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from mmlib.data.images import to_pixels
from mmlib.data.readers import Record
from mmlib.data.tokenizer import Tokenizer
from mmlib.tokens import PAD_ID


def shift_image(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """`image` [C, H, W] moved right by `dx` and down by `dy` pixels, edge pixels repeated.

    Only a translation: flips would swap "left of", and crops could cut a subject out.
    """
    pad = max(abs(dx), abs(dy))
    if pad == 0:
        return image
    height, width = image.shape[-2:]
    padded = torch.nn.functional.pad(image[None], (pad, pad, pad, pad), mode="replicate")[0]
    top, left = pad - dy, pad - dx
    return padded[:, top : top + height, left : left + width]


class CaptionDataset(Dataset[dict[str, Any]]):
    """Images from a uint8 cache with their captions, tokenized once at construction.

    Training draws one caption per record per epoch (see `set_epoch`); evaluation uses the first
    caption for the loss and `references(i)` for metrics.
    """

    def __init__(
        self,
        records: Sequence[Record],
        images_uint8: torch.Tensor,
        tokenizer: Tokenizer,
        max_length: int,
        seed: int = 0,
        train: bool = True,
        max_shift: int = 0,
    ) -> None:
        if images_uint8.dtype != torch.uint8 or images_uint8.shape[0] != len(records):
            raise ValueError(
                f"images_uint8 must be uint8 [N, 3, S, S] with N={len(records)} records; got "
                f"{images_uint8.dtype} {tuple(images_uint8.shape)}"
            )
        self.records = list(records)
        self.images = images_uint8
        self.seed = seed
        self.train = train
        self.max_shift = max_shift if train else 0
        self.counts = torch.tensor([len(record.captions) for record in self.records])
        self.first = torch.cumsum(self.counts, 0) - self.counts
        captions = [caption for record in self.records for caption in record.captions]
        self.tokens = tokenizer.batch_encode(captions, max_length=max_length)
        # In shared memory so that DataLoader workers, persistent ones too, see `set_epoch`.
        self.choice = torch.zeros(len(self.records), dtype=torch.long).share_memory_()
        self.shift = torch.zeros(len(self.records), 2, dtype=torch.long).share_memory_()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Pick this epoch's caption and shift of each record, a function of (seed, epoch, index),
        so neither depends on the number of processes or workers, nor on a resume."""
        if not self.train:
            return
        generator = torch.Generator().manual_seed((self.seed << 32) + epoch)
        draws = torch.randint(2**62, (len(self.records),), generator=generator)
        self.choice.copy_(draws % self.counts)
        if self.max_shift:
            shifts = torch.randint(
                -self.max_shift, self.max_shift + 1, (len(self.records), 2), generator=generator
            )
            self.shift.copy_(shifts)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.first[index] + self.choice[index]
        image = to_pixels(self.images[index])
        if self.max_shift:
            image = shift_image(image, *self.shift[index].tolist())
        return {"image": image, "tokens": self.tokens[row], "index": index}

    def references(self, index: int) -> list[str]:
        """All captions of record `index`, for evaluation metrics."""
        return list(self.records[index].captions)


def collate_batch(samples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack samples; tokens are cut after the last non-pad position of the longest caption."""
    tokens = torch.stack([sample["tokens"] for sample in samples])
    positions = torch.arange(1, tokens.shape[1] + 1)
    length = max(1, int(((tokens != PAD_ID) * positions).max()))
    return {
        "images": torch.stack([sample["image"] for sample in samples]),
        "tokens": tokens[:, :length],
        "indices": torch.tensor([sample["index"] for sample in samples]),
    }


def make_loader(
    dataset: Dataset[Any],
    batch_size: int,
    *,
    shuffle: bool,
    num_workers: int = 0,
    pin_memory: bool = False,
    device_type: str = "cpu",
    distributed: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
) -> DataLoader[Any]:
    """A DataLoader whose order is a function of (seed, epoch): call `set_loader_epoch` each epoch.

    With `distributed`, each rank reads its own share (`num_replicas`/`rank` default to the
    process group's). Memory is pinned only for CUDA.
    """
    if distributed:
        # drop_last here too: process r then reads positions r, r + n, ... of the same seeded
        # order as one process would, so each global batch holds the same samples.
        sampler: DistributedSampler[int] = DistributedSampler(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
    else:  # the same sampler with one replica: a seeded, per-epoch order, also after a resume
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_batch,
        pin_memory=pin_memory and device_type == "cuda",
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        # Its own generator: starting an epoch must not draw from the global RNG, or a run
        # resumed mid-epoch would see other dropout masks than an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
    )


def set_loader_epoch(loader: DataLoader[Any] | DeviceLoader, epoch: int) -> None:
    """Set the epoch of the loader's order and, for training, of its caption choice."""
    if isinstance(loader, DeviceLoader):
        loader.set_epoch(epoch)
        return
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    if isinstance(loader.dataset, CaptionDataset):
        loader.dataset.set_epoch(epoch)


class DeviceLoader:
    """The training batches of a `CaptionDataset`, made on `device` from images kept there.

    The uint8 images and the tokens are copied to `device` once; each batch is gathered,
    converted to [-1, 1] and shifted there, with no worker, no host-to-device copy of pixels
    and no Python per sample. Its batches equal those of `make_loader(dataset, batch_size,
    shuffle=True, seed=seed, drop_last=drop_last)` on one process, epoch by epoch: the order is
    the sampler's permutation (drawn on the CPU from the same seeded generator, a few thousand
    integers per epoch), captions and shifts are the dataset's `set_epoch` draws, and tokens
    are cut to the batch's longest caption as `collate_batch` cuts them.
    """

    def __init__(
        self,
        dataset: CaptionDataset,
        batch_size: int,
        device: torch.device | str,
        *,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be >= 1")
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.images = dataset.images.to(self.device)
        self.tokens = dataset.tokens.to(self.device)
        positions = torch.arange(1, dataset.tokens.shape[1] + 1)
        self.token_lengths = ((dataset.tokens != PAD_ID) * positions).amax(1)  # per caption row

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order, captions and shifts the next iteration uses."""
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        whole, rest = divmod(len(self.dataset), self.batch_size)
        return whole + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        dataset = self.dataset
        generator = torch.Generator().manual_seed(self.seed + self.epoch)  # DistributedSampler's
        order = torch.randperm(len(dataset), generator=generator)
        rows = dataset.first[order] + dataset.choice[order]
        lengths = self.token_lengths[rows]
        order_on_device = order.to(self.device, non_blocking=True)
        rows_on_device = rows.to(self.device, non_blocking=True)
        shifts = dataset.shift[order].to(self.device, non_blocking=True)
        for number in range(len(self)):
            batch = slice(number * self.batch_size, (number + 1) * self.batch_size)
            indices = order_on_device[batch]
            images = to_pixels(self.images[indices])
            if dataset.max_shift:
                images = shift_images(images, shifts[batch], dataset.max_shift)
            length = max(1, int(lengths[batch].max()))
            yield {
                "images": images,
                "tokens": self.tokens[rows_on_device[batch], :length],
                "indices": indices,
            }


def shift_images(images: torch.Tensor, shifts: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Each image [B, C, H, W] moved by its (dx, dy) in `shifts` [B, 2], edge pixels repeated:
    `shift_image` for a whole batch at once, on the batch's device."""
    batch, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4, mode="replicate")
    rows = (max_shift - shifts[:, 1, None]) + torch.arange(height, device=images.device)
    columns = (max_shift - shifts[:, 0, None]) + torch.arange(width, device=images.device)
    return padded[
        torch.arange(batch, device=images.device)[:, None, None, None],
        torch.arange(channels, device=images.device)[None, :, None, None],
        rows[:, None, :, None],
        columns[:, None, None, :],
    ]
