"""Choosing a run's data and splitting it: `load_split` finds the data (`resolve_data_source`),
reads it and splits it by image.

Data flows one way: files -> `Record`s (`mmlib.readers`) -> the split (here) -> a uint8 image
cache (`mmlib.images`) -> `CaptionDataset` and its loaders (`mmlib.dataset`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mmlib.config import Config
from mmlib.readers import (
    SEED_METADATA,
    DataReport,
    DatasetError,
    Record,
    detect_format,
    load_records,
)

SYNTHETIC_SIZE = 5141


# --------------------------------------------------------------------------- split


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) index lists, both sorted; validation is floor(val_fraction * n) items."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r}: must be in [0, 1)")
    n_val = math.floor(val_fraction * n + 1e-9)  # 0.29 * 100 is 28.999...
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val = sorted(order[:n_val].tolist())
    chosen = set(val)
    return [i for i in range(n) if i not in chosen], val


def split_records(
    records: Sequence[Record], val_fraction: float, seed: int
) -> tuple[list[Record], list[Record]]:
    """(train, val) records; a record is an image, so no validation caption is seen in training."""
    train, val = split_indices(len(records), val_fraction, seed)
    if not train or not val:
        raise DatasetError(
            f"{len(records)} records with val_fraction={val_fraction} leave "
            f"{len(train)} for training and {len(val)} for validation; add images or change "
            "val_fraction"
        )
    return [records[i] for i in train], [records[i] for i in val]


# --------------------------------------------------------------------------- finding the data


@dataclass(frozen=True)
class DataSource:
    """Where a run's data comes from, and a sentence saying so."""

    path: Path
    format: str
    images_dir: Path | None
    is_synthetic: bool
    message: str


def resolve_data_source(config: Config) -> DataSource:
    """`config.data_dir`, else the engravings at `config.metadata_path`, else the synthetic set
    (made if missing)."""
    if config.data_dir is not None:
        fmt = detect_format(config.data_dir) if config.data_format == "auto" else config.data_format
        message = f"Using the {fmt} dataset at {config.data_dir}"
        return DataSource(config.data_dir, fmt, None, False, message)
    if config.metadata_path.is_file():
        message = f"Using the engravings at {config.metadata_path} (images: {config.images_dir})"
        return DataSource(config.metadata_path, "seed", config.images_dir, False, message)
    folder = config.synthetic_dir
    message = f"No engravings at {config.metadata_path}; using the synthetic set at {folder}/"
    if not (folder / SEED_METADATA).is_file():
        from mmlib import synthetic  # only needed, and only imported, when generating

        synthetic.generate(folder, n=SYNTHETIC_SIZE, image_size=128, seed=config.seed)
        message += " (generated now)"
    return DataSource(folder, "seed", None, True, message)


@dataclass(frozen=True)
class SplitData:
    """A run's dataset read and split: where from, what was read, train and validation records."""

    source: DataSource
    report: DataReport
    train: list[Record]
    val: list[Record]


def load_run_records(
    path: str | os.PathLike[str], format: str, images_dir: Path | None, config: Config
) -> tuple[list[Record], DataReport]:
    """A dataset read as a run reads it: the records `python -m mmlib data check` keeps.

    Every image is decoded once (truncated files are skipped); the results are kept in
    `config.cache_dir`, so a later read decodes only new or changed files.
    """
    return load_records(
        path,
        format,
        images_dir,
        verify_images=True,
        max_image_pixels=config.max_image_pixels,
        decode_memo_dir=config.cache_dir,
    )


def load_split(config: Config) -> SplitData:
    """Find the data (`resolve_data_source`), read it and split it by image, as a run does."""
    source = resolve_data_source(config)
    records, report = load_run_records(source.path, source.format, source.images_dir, config)
    train, val = split_records(records, config.val_fraction, config.seed)
    return SplitData(source, report, train, val)
