"""Tests for mmlib.data.images: decoding any image mode, resizing, the decoded-image cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_records, write_engraving
from PIL import Image

import mmlib.data.images
from mmlib.data.images import build_image_cache, cache_path, load_image
from mmlib.data.readers import DatasetError

# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1", "CMYK", "I;16"])
def test_every_mode_becomes_rgb(tmp_path: Path, mode: str) -> None:
    image = Image.new("RGB", (12, 12), (200, 100, 50)).convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    image.save(path)
    out = load_image(path, 16)
    assert out.shape == (3, 16, 16) and out.dtype == torch.uint8


def test_cmyk_jpeg_keeps_its_colours(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16), (200, 100, 50)).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    pixel = load_image(tmp_path / "c.jpg", 16)[:, 8, 8].int()
    assert (pixel - torch.tensor([200, 100, 50])).abs().max() <= 3


def test_transparency_becomes_white_paper(tmp_path: Path) -> None:
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (load_image(tmp_path / "clear.png", 16) == 255).all()


def test_sixteen_bit_png_is_scaled(tmp_path: Path) -> None:
    Image.new("I;16", (16, 16), 40000).save(tmp_path / "deep.png")
    assert abs(int(load_image(tmp_path / "deep.png", 16)[0, 0, 0]) - 40000 / 257) < 1


def test_pad_fills_with_the_border_colour_and_crop_fills_the_square(tmp_path: Path) -> None:
    paper = (230, 220, 200)
    image = Image.new("RGB", (40, 20), paper)
    image.paste((0, 0, 0), (18, 0, 22, 20))  # a vertical ink stroke in the middle
    image.save(tmp_path / "wide.png")

    padded = load_image(tmp_path / "wide.png", 16, "pad")
    cropped = load_image(tmp_path / "wide.png", 16, "crop")

    assert padded.shape == cropped.shape == (3, 16, 16)
    assert (padded[:, :4] == torch.tensor(paper, dtype=torch.uint8).view(3, 1, 1)).all()
    assert padded[:, 8, 8].max() < 100 and cropped[:, 8, 8].max() < 100
    assert cropped[:, :, 0].tolist() == [[paper[c]] * 16 for c in range(3)]
    with pytest.raises(ValueError, match="resize_mode"):
        load_image(tmp_path / "wide.png", 16, "stretch")


# --------------------------------------------------------------------------- cache


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    original = mmlib.data.images.load_image

    def counting(path: Path, *args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(mmlib.data.images, "load_image", counting)
    return calls


def test_cache_is_reused_and_rebuilt_when_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = make_records(tmp_path / "images", 4)
    cache_dir = tmp_path / "cache"
    calls = count_decodes(monkeypatch)

    first = build_image_cache(records, 16, cache_dir=cache_dir, progress=False)
    second = build_image_cache(records, 16, cache_dir=cache_dir, progress=False)
    assert len(calls) == 4 and torch.equal(first, second)

    write_engraving(records[2].image_path, size=(50, 20), shade=4)
    os.utime(records[2].image_path, ns=(1, 1))  # a different mtime, whatever the clock did
    third = build_image_cache(records, 16, cache_dir=cache_dir, progress=False)
    assert len(calls) == 8 and not torch.equal(third[2], first[2])
    assert torch.equal(third[2], load_image(records[2].image_path, 16))


def test_cache_key_covers_size_and_resize_mode(tmp_path: Path) -> None:
    records = make_records(tmp_path, 2)
    names = {cache_path(records, s, m, tmp_path).name for s in (16, 32) for m in ("pad", "crop")}
    assert len(names) == 4


def test_large_cache_is_memory_mapped_with_equal_content(tmp_path: Path) -> None:
    records = make_records(tmp_path / "images", 5)
    in_memory = build_image_cache(records, 16, progress=False)
    mapped = build_image_cache(
        records, 16, cache_dir=tmp_path / "cache", memmap_threshold_bytes=0, progress=False
    )
    path = cache_path(records, 16, "pad", tmp_path / "cache")
    assert path.stat().st_size == 5 * 3 * 16 * 16
    if sys.platform == "linux":
        assert str(path) in Path("/proc/self/maps").read_text()
    assert torch.equal(in_memory, mapped) and mapped.shape == (5, 3, 16, 16)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temp files


def test_a_failed_build_leaves_no_cache(tmp_path: Path) -> None:
    records = make_records(tmp_path / "images", 3)
    records[1].image_path.write_bytes(records[1].image_path.read_bytes()[:60])
    with pytest.raises(DatasetError, match=r"record '1': .*1\.png: not a readable image"):
        build_image_cache(records, 16, cache_dir=tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []
