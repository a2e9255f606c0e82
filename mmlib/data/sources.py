"""Choosing a run's data and splitting it: `load_split` finds the data (`resolve_data_source`),
reads it and splits it by image into training, validation and test records.

Data flows one way: files -> `Record`s (`mmlib.data.readers`) -> the split (here) -> a uint8 image
cache (`mmlib.data.images`) -> `CaptionDataset` and its loaders (`mmlib.data.dataset`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mmlib.config import Config
from mmlib.data import synthetic
from mmlib.data.readers import (
    SEED_METADATA,
    DataReport,
    DatasetError,
    Record,
    detect_format,
    load_records,
)

SYNTHETIC_SIZE = 5141
SYNTHETIC_TEST_SIZE = 514  # as many test images as the synthetic set has validation images


# --------------------------------------------------------------------------- split


def split_indices(
    n: int, val_fraction: float, seed: int, test_fraction: float = 0.0
) -> tuple[list[int], list[int], list[int]]:
    """(train, val, test) index lists, each sorted; validation is floor(val_fraction * n) items
    and test floor(test_fraction * n). Validation is the same whatever `test_fraction`: both are
    taken from one seeded permutation, validation first, so a test split only shrinks training."""
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name}={fraction!r}: must be in [0, 1)")
    n_val = math.floor(val_fraction * n + 1e-9)  # 0.29 * 100 is 28.999...
    n_test = math.floor(test_fraction * n + 1e-9)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    val, test = sorted(order[:n_val]), sorted(order[n_val : n_val + n_test])
    held_out = set(val) | set(test)
    return [i for i in range(n) if i not in held_out], val, test


def is_test_record(record: Record) -> bool:
    """Whether the dataset itself puts `record` in its test split (`"split": "test"`)."""
    return record.attributes.get(synthetic.SPLIT_FIELD) == synthetic.TEST_SPLIT


def split_records(
    records: Sequence[Record], val_fraction: float, seed: int, test_fraction: float = 0.0
) -> tuple[list[Record], list[Record], list[Record]]:
    """(train, val, test) records; a record is an image, so all captions of an image are in one
    split. Records the dataset marks as test (the synthetic set's) are the test split, and the
    rest is split into training and validation as if they were not there; data without them
    give `test_fraction` of their images to the test split."""
    test = [record for record in records if is_test_record(record)]
    pool = [record for record in records if not is_test_record(record)]
    train, val, carved = split_indices(
        len(pool), val_fraction, seed, 0.0 if test else test_fraction
    )
    if not train or not val:
        raise DatasetError(
            f"{len(pool)} records with val_fraction={val_fraction} and "
            f"test_fraction={test_fraction} leave {len(train)} for training and {len(val)} for "
            "validation; add images or lower the fractions"
        )
    return [pool[i] for i in train], [pool[i] for i in val], test or [pool[i] for i in carved]


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
        synthetic.generate(
            folder, n=SYNTHETIC_SIZE, image_size=128, seed=config.seed, test_n=SYNTHETIC_TEST_SIZE
        )
        message += " (generated now)"
    return DataSource(folder, "seed", None, True, message)


@dataclass(frozen=True)
class SplitData:
    """A run's dataset read and split: where from, what was read, and the training, validation
    and test records (test may be empty: data without a test split and `test_fraction` 0)."""

    source: DataSource
    report: DataReport
    train: list[Record]
    val: list[Record]
    test: list[Record]


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
    train, val, test = split_records(
        records, config.val_fraction, config.seed, config.test_fraction
    )
    return SplitData(source, report, train, val, test)
