"""Tests for mmlib.data.dataset: the caption dataset, collation, loaders, and the whole flow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import make_records

from mmlib.data.dataset import (
    CaptionDataset,
    DeviceLoader,
    collate_batch,
    make_loader,
    set_loader_epoch,
    shift_image,
    shift_images,
)
from mmlib.data.images import build_image_cache
from mmlib.data.readers import Record, load_records
from mmlib.data.sources import split_records
from mmlib.data.tokenizer import WordTokenizer


@pytest.fixture
def tokenizer() -> WordTokenizer:
    words = [f"image {i} caption {c} word" for i in range(20) for c in range(4)]
    return WordTokenizer(vocab_size=200).build_vocab(words)


# --------------------------------------------------------------------------- dataset and loaders


def test_dataset_scales_images_and_tokenizes_once(
    tmp_path: Path, tokenizer: WordTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = make_records(tmp_path, 6, captions_per_record=2)
    images = build_image_cache(records, 16, progress=False)
    images[0, 0, 0, :2] = torch.tensor([0, 255], dtype=torch.uint8)
    calls: list[list[str]] = []
    original = tokenizer.batch_encode

    def batch_encode(captions: list[str], max_length: int = 100) -> torch.Tensor:
        calls.append(list(captions))
        return original(captions, max_length=max_length)

    monkeypatch.setattr(tokenizer, "batch_encode", batch_encode)
    monkeypatch.setattr(tokenizer, "encode", lambda *a, **k: pytest.fail("encode per sample"))

    dataset = CaptionDataset(records, images, tokenizer, max_length=12)
    samples = [dataset[i] for i in range(len(dataset))] * 2

    assert len(calls) == 1 and len(calls[0]) == 12  # all captions of all records, once
    image = samples[0]["image"]
    assert image.dtype == torch.float32 and image.shape == (3, 16, 16)
    assert image.min() >= -1.0 and image.max() <= 1.0
    assert image[0, 0, :2].tolist() == [-1.0, 1.0]
    assert samples[3]["tokens"].shape == (12,) and samples[3]["index"] == 3


def test_set_epoch_draws_captions_deterministically(
    tmp_path: Path, tokenizer: WordTokenizer
) -> None:
    records = make_records(tmp_path, 12, captions_per_record=4)
    images = build_image_cache(records, 16, progress=False)

    def chosen(dataset: CaptionDataset) -> list[str]:
        return [tokenizer.decode(dataset[i]["tokens"]) for i in range(len(dataset))]

    train = CaptionDataset(records, images, tokenizer, 12, seed=3)
    epoch0 = chosen(train)
    train.set_epoch(1)
    epoch1 = chosen(train)
    again = CaptionDataset(records, images, tokenizer, 12, seed=3)
    again.set_epoch(1)

    assert epoch0 != epoch1 and chosen(again) == epoch1
    assert all(caption.startswith(f"image {i} caption") for i, caption in enumerate(epoch1))
    evaluation = CaptionDataset(records, images, tokenizer, 12, train=False)
    evaluation.set_epoch(5)
    assert chosen(evaluation) == [f"image {i} caption 0" for i in range(12)]
    assert evaluation.references(2) == list(records[2].captions)


def test_shift_image_moves_content_and_repeats_edges() -> None:
    image = torch.arange(2 * 4 * 4, dtype=torch.float32).view(2, 4, 4)
    right = shift_image(image, 1, 0)
    assert torch.equal(right[:, :, 1:], image[:, :, :-1])
    assert torch.equal(right[:, :, 0], image[:, :, 0])  # edge repeated, not zeros
    up = shift_image(image, 0, -2)
    assert torch.equal(up[:, :2], image[:, 2:]) and torch.equal(up[:, 3], image[:, 3])
    assert torch.equal(shift_image(image, 0, 0), image)


def test_training_shifts_follow_seed_and_epoch_only(
    tmp_path: Path, tokenizer: WordTokenizer
) -> None:
    records = make_records(tmp_path, 8)
    images = build_image_cache(records, 16, progress=False)

    def pictures(dataset: CaptionDataset) -> torch.Tensor:
        return torch.stack([dataset[i]["image"] for i in range(len(dataset))])

    plain = pictures(CaptionDataset(records, images, tokenizer, 12))
    shifted = CaptionDataset(records, images, tokenizer, 12, seed=3, max_shift=2)
    epoch0 = pictures(shifted)
    shifted.set_epoch(1)
    again = CaptionDataset(records, images, tokenizer, 12, seed=3, max_shift=2)
    again.set_epoch(1)

    assert not torch.equal(epoch0, plain) and not torch.equal(pictures(shifted), epoch0)
    assert torch.equal(pictures(again), pictures(shifted))
    assert shifted.shift.abs().max() <= 2
    evaluation = CaptionDataset(records, images, tokenizer, 12, train=False, max_shift=2)
    assert torch.equal(pictures(evaluation), plain)  # validation images never move


def test_collate_trims_to_the_longest_caption(tmp_path: Path, tokenizer: WordTokenizer) -> None:
    records = make_records(tmp_path, 2)
    records = [
        Record("a", records[0].image_path, ("image caption",)),
        Record("b", records[1].image_path, ("image caption word word",)),
    ]
    dataset = CaptionDataset(records, build_image_cache(records, 16, progress=False), tokenizer, 20)
    batch = collate_batch([dataset[0], dataset[1]])
    assert batch["tokens"].shape == (2, 6)  # <START> 4 words <END>
    assert batch["tokens"][1, -1] == tokenizer.end_id and batch["tokens"][0, -1] == tokenizer.pad_id
    assert batch["images"].shape == (2, 3, 16, 16) and batch["indices"].tolist() == [0, 1]
    assert collate_batch([dataset[0]])["tokens"].shape == (1, 4)


def test_loader_order_follows_seed_and_epoch(tmp_path: Path, tokenizer: WordTokenizer) -> None:
    records = make_records(tmp_path, 10)
    dataset = CaptionDataset(records, build_image_cache(records, 16, progress=False), tokenizer, 8)

    def order(seed: int, epoch: int) -> list[int]:
        loader = make_loader(dataset, 4, shuffle=True, seed=seed)
        set_loader_epoch(loader, epoch)
        return [i for batch in loader for i in batch["indices"].tolist()]

    assert sorted(order(0, 0)) == list(range(10))
    assert order(0, 0) == order(0, 0) and order(0, 0) != order(0, 1) and order(0, 0) != order(1, 0)
    plain = make_loader(dataset, 4, shuffle=False, pin_memory=True, drop_last=True)
    assert [b["indices"].tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert plain.pin_memory is False  # only for CUDA


def test_distributed_ranks_cover_the_data_disjointly(
    tmp_path: Path, tokenizer: WordTokenizer
) -> None:
    records = make_records(tmp_path, 10)
    dataset = CaptionDataset(records, build_image_cache(records, 16, progress=False), tokenizer, 8)
    seen = []
    for rank in (0, 1):
        loader = make_loader(
            dataset, 3, shuffle=True, distributed=True, seed=5, num_replicas=2, rank=rank
        )
        set_loader_epoch(loader, 2)
        seen.append([i for batch in loader for i in batch["indices"].tolist()])
    assert len(seen[0]) == len(seen[1]) == 5
    assert not set(seen[0]) & set(seen[1]) and set(seen[0]) | set(seen[1]) == set(range(10))


@pytest.mark.skipif(sys.platform != "linux", reason="worker start-up is slow where it spawns")
def test_persistent_workers_see_set_epoch(tmp_path: Path, tokenizer: WordTokenizer) -> None:
    records = make_records(tmp_path, 8, captions_per_record=4)
    dataset = CaptionDataset(records, build_image_cache(records, 16, progress=False), tokenizer, 12)
    loader = make_loader(dataset, 8, shuffle=False, num_workers=1)
    tokens = []
    for epoch in (0, 1):
        set_loader_epoch(loader, epoch)
        tokens.append(next(iter(loader))["tokens"])
        dataset_tokens = torch.stack([dataset[i]["tokens"] for i in range(8)])
        assert torch.equal(tokens[-1], dataset_tokens[:, : tokens[-1].shape[1]])
    assert loader.persistent_workers and not torch.equal(tokens[0], tokens[1])


# --------------------------------------------------------------------------- real data


def test_real_flickr8k_sample(real_samples: Path, tmp_path: Path) -> None:
    records, report = load_records(real_samples)
    assert report.format == "flickr8k"
    assert (report.records, report.captions, report.skipped_count) == (200, 1000, 0)
    assert all(len(record.captions) == 5 for record in records)

    train, val, _ = split_records(records, 0.1, seed=42)
    images = build_image_cache(train[:48], 64, cache_dir=tmp_path, progress=False)
    tokenizer = WordTokenizer(8000).build_vocab(c for r in train for c in r.captions)
    dataset = CaptionDataset(train[:48], images, tokenizer, max_length=40, seed=42)
    batch = next(iter(make_loader(dataset, 16, shuffle=True, seed=42)))

    assert (len(train), len(val)) == (180, 20)
    assert batch["images"].shape == (16, 3, 64, 64)
    assert batch["images"].min() >= -1 and batch["images"].max() <= 1
    assert batch["tokens"][:, 0].eq(tokenizer.start_id).all()


def test_starting_an_epoch_leaves_the_global_rng_alone(seed_dataset) -> None:
    records, _ = load_records(seed_dataset(n=8))
    images = build_image_cache(records, 16, cache_dir=None, progress=False)
    dataset = CaptionDataset(records, images, WordTokenizer().build_vocab(["a"]), 8)
    loader = make_loader(dataset, 4, shuffle=True, seed=0)
    before = torch.get_rng_state()
    next(iter(loader))
    assert torch.equal(before, torch.get_rng_state())


# --------------------------------------------------------------------------- the device path


@pytest.mark.parametrize("drop_last", [True, False])
def test_device_loader_gives_the_dataloaders_batches(
    tmp_path: Path, tokenizer: WordTokenizer, drop_last: bool
) -> None:
    # Several captions of different lengths per record and shifts: the caption choice, the
    # order, the shift and the token cut must all match, in every epoch.
    records = make_records(tmp_path, 11, captions_per_record=4)
    images = build_image_cache(records, 16, progress=False)

    def dataset() -> CaptionDataset:
        return CaptionDataset(records, images, tokenizer, max_length=12, seed=5, max_shift=3)

    loader = make_loader(dataset(), 4, shuffle=True, seed=7, drop_last=drop_last)
    on_device = DeviceLoader(dataset(), 4, "cpu", seed=7, drop_last=drop_last)
    assert len(on_device) == len(loader) == (2 if drop_last else 3)
    orders = []
    for epoch in (0, 1, 2):
        set_loader_epoch(loader, epoch)
        set_loader_epoch(on_device, epoch)
        expected, got = list(loader), list(on_device)
        assert len(got) == len(expected)
        for want, have in zip(expected, got, strict=True):
            assert torch.equal(have["indices"], want["indices"])
            assert torch.equal(have["tokens"], want["tokens"])
            assert torch.equal(have["images"], want["images"])
        orders.append(torch.cat([batch["indices"] for batch in got]))
    assert not torch.equal(orders[0], orders[1])  # each epoch has its own order
    with pytest.raises(ValueError, match="batch_size=0"):
        DeviceLoader(dataset(), 0, "cpu")


def test_shift_images_is_shift_image_per_sample() -> None:
    images = torch.rand(3, 2, 9, 7, generator=torch.Generator().manual_seed(0))
    shifts = torch.tensor([[2, -1], [0, 0], [-3, 3]])
    shifted = shift_images(images, shifts, max_shift=3)
    for image, (dx, dy), have in zip(images, shifts.tolist(), shifted, strict=True):
        assert torch.equal(have, shift_image(image, dx, dy))
