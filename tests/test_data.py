"""Tests for mmlib.data.sources: the split, finding the data, `load_split`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import BAD_IMAGES, make_records, write_bad_dataset, write_flickr8k
from PIL import Image

from mmlib.config import DEFAULT_MAX_IMAGE_PIXELS, PIL_PIXEL_LIMIT, Config
from mmlib.data import synthetic
from mmlib.data.images import build_image_cache
from mmlib.data.readers import TOO_LARGE, DatasetError, Record, check_dataset, load_records
from mmlib.data.sources import (
    load_run_records,
    load_split,
    resolve_data_source,
    split_indices,
    split_records,
)

# --------------------------------------------------------------------------- split


def test_split_matches_train_production_and_is_deterministic() -> None:
    train, val, test = split_indices(5141, 0.1, seed=42)
    assert (len(train), len(val), test) == (4627, 514, [])
    assert train == sorted(train) and val == sorted(val)
    assert set(train) | set(val) == set(range(5141)) and not set(train) & set(val)
    assert split_indices(5141, 0.1, seed=42) == (train, val, test)
    assert split_indices(5141, 0.1, seed=43)[1] != val
    assert split_indices(100, 0.29, seed=0)[1].__len__() == 29


def test_a_test_fraction_takes_from_training_and_leaves_validation_alone() -> None:
    train, val, _ = split_indices(1000, 0.1, seed=5)
    train_t, val_t, test = split_indices(1000, 0.1, seed=5, test_fraction=0.15)
    assert val_t == val and len(test) == 150 and test == sorted(test)
    assert set(train_t) == set(train) - set(test) and not set(test) & set(val)
    with pytest.raises(ValueError, match="test_fraction=1.0"):
        split_indices(10, 0.1, seed=5, test_fraction=1.0)


def test_split_records_is_by_image(tmp_path: Path) -> None:
    records = make_records(tmp_path, 20, captions_per_record=3)
    train, val, test = split_records(records, 0.25, seed=1, test_fraction=0.2)
    assert (len(train), len(val), len(test)) == (11, 5, 4)
    captions = [{c for r in part for c in r.captions} for part in (train, val, test)]
    assert sum(map(len, captions)) == len(set().union(*captions)) == 60
    with pytest.raises(DatasetError, match="0 for validation"):
        split_records(records[:3], 0.1, seed=1)


def test_marked_test_records_are_the_test_split_and_move_nothing_else(tmp_path: Path) -> None:
    pool = make_records(tmp_path, 20)
    marked = [
        Record(f"t{i}", pool[i].image_path, (f"test caption {i}",), {"split": "test"})
        for i in range(3)
    ]
    records = [*marked[:1], *pool, *marked[1:]]
    train, val, test = split_records(records, 0.2, seed=4, test_fraction=0.3)
    assert (train, val) == split_records(pool, 0.2, seed=4)[:2]
    assert [r.id for r in test] == ["t0", "t1", "t2"]


# --------------------------------------------------------------------------- finding the data


def test_resolve_prefers_data_dir(tmp_path: Path) -> None:
    root = write_flickr8k(tmp_path / "flickr")
    source = resolve_data_source(Config(data_dir=root))
    assert (source.path, source.format, source.is_synthetic) == (root, "flickr8k", False)
    assert resolve_data_source(Config(data_dir=root, data_format="csv")).format == "csv"


def test_resolve_uses_the_configured_engravings_when_present(
    seed_dataset: Callable[..., Path],
) -> None:
    root = seed_dataset(n=2)
    config = Config(
        metadata_path=root / "metadata/engraving_metadata.json",
        images_dir=root / "processed/engraving/resized",
    )
    source = resolve_data_source(config)
    assert (source.format, source.images_dir, source.is_synthetic) == (
        "seed",
        config.images_dir,
        False,
    )
    assert len(load_records(source.path, source.format, source.images_dir)[0]) == 2


def test_resolve_generates_the_synthetic_set_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_dataset: Callable[..., Path]
) -> None:
    calls: list[tuple[Path, dict[str, Any]]] = []

    def generate(out_dir: Path, **kwargs: Any) -> None:
        calls.append((out_dir, kwargs))
        seed_dataset(n=3, name=out_dir.name)

    monkeypatch.setattr(synthetic, "generate", generate)
    config = Config(
        metadata_path=tmp_path / "absent/engraving_metadata.json",
        synthetic_dir=tmp_path / "synthetic",
        seed=7,
    )

    first = resolve_data_source(config)
    second = resolve_data_source(config)

    expected = {"n": 5141, "image_size": 128, "seed": 7, "test_n": 514}
    assert calls == [(tmp_path / "synthetic", expected)]
    assert first.is_synthetic and first.format == "seed" and first.path == config.synthetic_dir
    assert first.message == (
        f"No engravings at {config.metadata_path}; using the synthetic set at "
        f"{config.synthetic_dir}/ (generated now)"
    )
    assert "generated now" not in second.message
    assert len(load_records(first.path, first.format)[0]) == 3


def test_load_split_reads_and_splits_the_configured_data(seed_dataset, tmp_path) -> None:
    root = seed_dataset(n=20)
    config = Config(data_dir=root, val_fraction=0.1, seed=3, cache_dir=tmp_path / "cache")
    split = load_split(config)
    assert split.source.format == "seed" and not split.source.is_synthetic
    assert (len(split.train), len(split.val), split.report.records) == (18, 2, 20)
    assert {r.id for r in split.train}.isdisjoint({r.id for r in split.val})
    assert split.val == split_records(load_records(root)[0], 0.1, 3)[1]


# --------------------------------------------------------------------------- what a run reads


@pytest.mark.filterwarnings("error")  # PIL's DecompressionBombWarning must not reach the user
@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_a_run_skips_what_data_check_skips(tmp_path: Path, name: str) -> None:
    root = write_bad_dataset(tmp_path / "a/set", [name], good=4)
    config = Config(cache_dir=tmp_path / "cache")
    checked = check_dataset(root)
    for _ in range(2):  # decoding every file, then the results kept in cache_dir
        records, report = load_run_records(root, "auto", None, config)
        assert len(records) == 4 and report.skipped == checked.skipped
        assert report.problems() == checked.problems()


def test_a_run_applies_its_pixel_limit(tmp_path: Path) -> None:
    root = write_bad_dataset(tmp_path / "set", [], good=3)  # 32x32 images
    config = Config(cache_dir=tmp_path / "cache", max_image_pixels=32 * 32)
    assert len(load_run_records(root, "jsonl", None, config)[0]) == 3
    config.max_image_pixels -= 1
    with pytest.raises(DatasetError, match=f"{TOO_LARGE}: 3 .*over the limit of 1,023 px"):
        load_run_records(root, "jsonl", None, config)


def test_a_run_may_raise_its_pixel_limit_above_the_default(tmp_path: Path) -> None:
    side = 8193  # one column and row more than 8192: over DEFAULT_MAX_IMAGE_PIXELS
    (tmp_path / "img").mkdir()
    Image.new("L", (side, side)).save(tmp_path / "img/large.png")
    (tmp_path / "d.jsonl").write_text('{"file": "img/large.png", "caption": "a large one"}\n')
    config = Config(cache_dir=tmp_path / "cache", max_image_pixels=PIL_PIXEL_LIMIT)
    records, _ = load_run_records(tmp_path, "jsonl", None, config)
    assert side * side > DEFAULT_MAX_IMAGE_PIXELS and len(records) == 1
    images = build_image_cache(records, 16, cache_dir=None, progress=False)
    assert images.shape == (1, 3, 16, 16)  # the cache decodes what the run's limit let through
