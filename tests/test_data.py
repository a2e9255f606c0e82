"""Tests for mmlib.data: reading each format, validation, images, split, cache, dataset, loaders."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw

import mmlib.data as data
from mmlib import synthetic
from mmlib.config import Config
from mmlib.data import (
    CaptionDataset,
    DatasetError,
    Record,
    build_image_cache,
    cache_path,
    check_dataset,
    collate_batch,
    detect_format,
    load_image,
    load_records,
    make_loader,
    resolve_data_source,
    set_loader_epoch,
    shift_image,
    split_indices,
    split_records,
)
from mmlib.tokenizer import ProductionTokenizer

FLICKR_SAMPLES = Path(__file__).resolve().parents[1].parent / "shared/real-samples/flickr8k-200"


# --------------------------------------------------------------------------- fixtures


def write_engraving(path: Path, size: tuple[int, int] = (32, 32), shade: int = 0) -> Path:
    """A small PNG: dark lines on a paper tone, varied by `shade`."""
    image = Image.new("RGB", size, (235, 225, 205))
    draw = ImageDraw.Draw(image)
    for x in range(shade % 5, size[0], 5):
        draw.line([(x, 0), (size[0] - x, size[1])], fill=(40, 30, 20))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_flickr8k(root: Path) -> Path:
    (root / "Images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (40, 30), (90, 120, 60)).save(root / "Images" / name)
    rows = ["image,caption"]
    rows += [f"a.jpg,A dog runs number {i} ." for i in range(5)]
    rows += [f'b.jpg,"A cat, sitting, number {i} ."' for i in range(5)]
    (root / "captions.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def write_jsonl(root: Path) -> Path:
    write_engraving(root / "img/a.png")
    write_engraving(root / "img/b.png")
    lines = [
        {"file": "img/a.png", "caption": "first caption of a"},
        {"image": "img/b.png", "text": "only caption of b", "source": "museum"},
        {"filename": "img/a.png", "caption": "second caption of a"},
    ]
    (root / "captions.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n\n")
    return root


def write_csv(root: Path) -> Path:
    write_engraving(root / "a.png")
    write_engraving(root / "b.png")
    (root / "data.csv").write_text(
        'filename,caption,artist\na.png,"An engraving, with a comma",Dürer\n'
        "b.png,Another engraving,Doré\na.png,A second caption,Dürer\n",
        encoding="utf-8",
    )
    return root


def write_coco(root: Path) -> Path:
    write_engraving(root / "images/a.png")
    write_engraving(root / "images/b.png")
    coco = {
        "images": [
            {"id": 7, "file_name": "a.png", "width": 32},
            {"id": 9, "file_name": "b.png", "width": 32},
        ],
        "annotations": [
            {"id": 1, "image_id": 7, "caption": "a first"},
            {"id": 2, "image_id": 9, "caption": "b only"},
            {"id": 3, "image_id": 7, "caption": "a second"},
        ],
    }
    (root / "captions_train.json").write_text(json.dumps(coco))
    return root


def write_sidecar(root: Path) -> Path:
    write_engraving(root / "a.png")
    write_engraving(root / "b.png")
    (root / "a.png").with_suffix(".txt").write_text("a first\n\n a second \n")
    (root / "b.txt").write_text("b only\n")
    return root


WRITERS: dict[str, Callable[[Path], Path]] = {
    "flickr8k": write_flickr8k,
    "jsonl": write_jsonl,
    "csv": write_csv,
    "coco": write_coco,
    "sidecar": write_sidecar,
}


def write_seed(root: Path, records: list[dict[str, Any]]) -> Path:
    """A seed-layout folder with the given metadata records; images named in them are drawn."""
    (root / "processed/engraving/resized").mkdir(parents=True, exist_ok=True)
    for record in records:
        if record.get("filename"):
            write_engraving(root / "processed/engraving/resized" / record["filename"])
    metadata = root / "metadata/engraving_metadata.json"
    metadata.parent.mkdir(parents=True, exist_ok=True)
    metadata.write_text(json.dumps(records))
    return root


def make_records(root: Path, n: int, captions_per_record: int = 1) -> list[Record]:
    records = []
    for i in range(n):
        path = write_engraving(root / f"{i}.png", size=(24 + i, 20), shade=i)
        captions = tuple(
            f"image {i} caption {c} " + "word " * c for c in range(captions_per_record)
        )
        records.append(Record(str(i), path, captions))
    return records


@pytest.fixture
def tokenizer() -> ProductionTokenizer:
    words = [f"image {i} caption {c} word" for i in range(20) for c in range(4)]
    return ProductionTokenizer(vocab_size=200).build_vocab(words)


# --------------------------------------------------------------------------- reading


def test_seed_folder_is_read_with_attributes_kept(seed_dataset: Callable[..., Path]) -> None:
    root = seed_dataset(n=5)
    metadata = root / "metadata/engraving_metadata.json"
    items = json.loads(metadata.read_text())
    items[0]["scene"] = {"objects": ["ship", "tower"]}
    metadata.write_text(json.dumps(items))

    records, report = load_records(root)

    assert detect_format(root) == "seed" and report.format == "seed"
    assert [r.id for r in records] == ["0", "1", "2", "3", "4"]
    assert records[0].attributes == {"scene": {"objects": ["ship", "tower"]}}
    assert records[0].image_path == root / "processed/engraving/resized/engraving_0000.png"
    assert (report.records, report.images, report.captions) == (5, 5, 5)


def test_seed_metadata_file_with_config_style_images_dir(seed_dataset: Callable[..., Path]) -> None:
    root = seed_dataset(n=3)
    metadata = root / "metadata/engraving_metadata.json"
    images = root / "processed/engraving/resized"
    assert detect_format(metadata) == "seed"
    by_default, _ = load_records(metadata)
    named, _ = load_records(metadata, "seed", images_dir=images)
    assert by_default == named and len(named) == 3


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_each_format_is_detected_and_keeps_several_captions(tmp_path: Path, fmt: str) -> None:
    root = WRITERS[fmt](tmp_path)
    assert detect_format(root) == fmt
    records, report = load_records(root)
    auto = {r.image_path.name: r.captions for r in records}
    named = {r.image_path.name: r.captions for r in load_records(root, fmt)[0]}
    assert auto == named
    assert len(records) == 2 and report.skipped_count == 0
    if fmt == "flickr8k":
        assert len(auto["a.jpg"]) == 5 and auto["b.jpg"][0] == "A cat, sitting, number 0 ."
    else:
        assert len(auto["a.png"]) == 2 and len(auto["b.png"]) == 1


def test_csv_and_jsonl_keep_extra_columns(tmp_path: Path) -> None:
    csv_records, _ = load_records(write_csv(tmp_path / "csv"))
    assert csv_records[0].attributes == {"artist": "Dürer"}
    assert csv_records[0].captions == ("An engraving, with a comma", "A second caption")
    jsonl_records, _ = load_records(write_jsonl(tmp_path / "jsonl"))
    assert jsonl_records[1].attributes == {"source": "museum"}


def test_coco_ids_and_attributes(tmp_path: Path) -> None:
    records, _ = load_records(write_coco(tmp_path))
    assert [(r.id, r.captions) for r in records] == [
        ("7", ("a first", "a second")),
        ("9", ("b only",)),
    ]
    assert records[0].attributes == {"width": 32}


def test_flickr8k_captions_file_can_be_given_directly(tmp_path: Path) -> None:
    root = write_flickr8k(tmp_path)
    assert detect_format(root / "captions.txt") == "flickr8k"
    assert len(load_records(root / "captions.txt")[0]) == 2


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fmt", ["auto", "seed", "csv", "coco"])
def test_missing_source_names_the_path(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(DatasetError, match="nowhere: no such file or folder"):
        load_records(tmp_path / "nowhere", fmt)


def test_missing_seed_metadata_names_the_expected_file(tmp_path: Path) -> None:
    (tmp_path / "processed/engraving/resized").mkdir(parents=True)
    with pytest.raises(DatasetError) as error:
        load_records(tmp_path, "seed")
    assert "metadata/engraving_metadata.json: metadata file not found" in str(error.value)


def test_missing_images_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "captions.txt").write_text("image,caption\na.jpg,hello\n")
    with pytest.raises(DatasetError, match=r"Images: images folder not found"):
        load_records(tmp_path)


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    root = write_seed(tmp_path, [])
    metadata = root / "metadata/engraving_metadata.json"
    metadata.write_text('[\n  {"id": 1, "filename": "a.png"},\n  {"id": 2 "filename": "b.png"}\n]')
    with pytest.raises(DatasetError) as error:
        load_records(root)
    message = str(error.value)
    assert str(metadata) in message and "line 3, column 12" in message


def test_malformed_jsonl_gives_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"file": "a.png", "caption": "x"}\n{"file": "b.png",}\n')
    with pytest.raises(DatasetError, match=r"d\.jsonl: line 2, column 18: not valid JSON"):
        load_records(tmp_path)


def test_malformed_csv_gives_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text('file,caption\na.png,fine\nb.png,"bad"quote\n')
    with pytest.raises(DatasetError) as error:
        load_records(tmp_path)
    assert "d.csv: line 3, column 12: malformed CSV" in str(error.value)


def test_csv_row_with_unquoted_comma_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("file,caption\na.png,a dog, running\n")
    with pytest.raises(DatasetError, match=r"d\.csv: line 2, column 3: 3 fields .* double quotes"):
        load_records(tmp_path)


def test_csv_header_without_known_columns(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("path,description\na.png,a dog\n")
    with pytest.raises(DatasetError, match=r"d\.csv: line 1: the header path,description lacks"):
        load_records(tmp_path)


def test_record_without_file_name_is_named(tmp_path: Path) -> None:
    root = write_seed(tmp_path, [{"id": "a", "filename": "a.png", "caption": "x"}, {"id": "b"}])
    with pytest.raises(DatasetError) as error:
        load_records(root)
    assert "engraving_metadata.json: record 1 (id 'b') has no 'filename'" in str(error.value)


def test_csv_row_without_file_name_is_named(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("file,caption\n,a dog\n")
    with pytest.raises(DatasetError, match=r"d\.csv: line 2 has no file name"):
        load_records(tmp_path)


def test_coco_annotation_of_unknown_image_is_named(tmp_path: Path) -> None:
    coco = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 5}]}
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match=r"annotations\[0\] refers to image_id 5"):
        load_records(tmp_path)


def test_empty_dataset_is_an_error_with_the_reasons(tmp_path: Path) -> None:
    root = write_seed(tmp_path, [{"id": 1, "filename": "a.png", "caption": "  "}])
    with pytest.raises(DatasetError) as error:
        check_dataset(root)
    assert "no usable records (1 skipped)" in str(error.value)
    assert "no caption: 1" in str(error.value)


def test_unknown_format_folder_says_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(DatasetError, match="cannot tell the dataset format"):
        detect_format(tmp_path)


# --------------------------------------------------------------------------- validation report


def test_skipped_records_are_counted_by_reason(tmp_path: Path) -> None:
    names = ["good.png", "nocap.png", "gone.png", "empty.png", "junk.png", "cut.png"]
    records = [{"id": name[:-4], "filename": name, "caption": "a caption"} for name in names]
    records[1]["caption"] = None
    root = write_seed(tmp_path, records)
    images = root / "processed/engraving/resized"
    (images / "gone.png").unlink()
    (images / "empty.png").write_bytes(b"")
    (images / "junk.png").write_bytes(b"this is not an image")
    write_engraving(images / "cut.png", size=(64, 64))
    png = (images / "cut.png").read_bytes()
    (images / "cut.png").write_bytes(png[: len(png) // 2])

    report = check_dataset(root)
    quick = load_records(root)[1]

    assert report.records == 1
    assert {reason: len(labels) for reason, labels in report.skipped.items()} == {
        data.NO_CAPTION: 1,
        data.MISSING_IMAGE: 1,
        data.EMPTY_IMAGE: 1,
        data.UNREADABLE_IMAGE: 1,
        data.CORRUPT_IMAGE: 1,
    }
    assert report.skipped[data.MISSING_IMAGE] == [f"gone ({images / 'gone.png'})"]
    assert data.CORRUPT_IMAGE not in quick.skipped and quick.records == 2  # headers only
    text = str(report)
    assert "skipped: 5" in text and "truncated or corrupt image file: 1 (cut" in text


def test_converted_modes_are_counted(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    base = Image.new("RGB", (20, 10), (200, 100, 50))
    base.convert("L").save(images / "gray.png")
    base.convert("P").save(images / "palette.png")
    Image.new("RGBA", (20, 10), (0, 0, 0, 0)).save(images / "clear.png")
    base.convert("CMYK").save(images / "cmyk.jpg")
    base.save(images / "rgb.png")
    lines = [json.dumps({"file": f"images/{p.name}", "caption": p.stem}) for p in images.iterdir()]
    (tmp_path / "d.jsonl").write_text("\n".join(lines))

    report = check_dataset(tmp_path)

    assert report.converted == {"L": 1, "P": 1, "RGBA": 1, "CMYK": 1}
    assert (report.smallest_side, report.largest_side) == (10, 20)
    assert "converted to RGB: CMYK 1, L 1, P 1, RGBA 1" in str(report)


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


# --------------------------------------------------------------------------- split


def test_split_matches_the_seed_and_is_deterministic() -> None:
    train, val = split_indices(5141, 0.1, seed=42)
    assert (len(train), len(val)) == (4627, 514)
    assert train == sorted(train) and val == sorted(val)
    assert set(train) | set(val) == set(range(5141)) and not set(train) & set(val)
    assert split_indices(5141, 0.1, seed=42) == (train, val)
    assert split_indices(5141, 0.1, seed=43)[1] != val
    assert split_indices(100, 0.29, seed=0)[1].__len__() == 29


def test_split_records_is_by_image(tmp_path: Path) -> None:
    records = make_records(tmp_path, 20, captions_per_record=3)
    train, val = split_records(records, 0.25, seed=1)
    assert len(val) == 5 and len(train) == 15
    train_captions = {c for r in train for c in r.captions}
    assert not train_captions & {c for r in val for c in r.captions}
    with pytest.raises(DatasetError, match="0 for validation"):
        split_records(records[:3], 0.1, seed=1)


# --------------------------------------------------------------------------- cache


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    original = data.load_image

    def counting(path: Path, *args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(data, "load_image", counting)
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
    with pytest.raises(DatasetError, match=r"1\.png: cannot decode the image of record '1'"):
        build_image_cache(records, 16, cache_dir=tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


# --------------------------------------------------------------------------- dataset and loaders


def test_dataset_scales_images_and_tokenizes_once(
    tmp_path: Path, tokenizer: ProductionTokenizer, monkeypatch: pytest.MonkeyPatch
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
    tmp_path: Path, tokenizer: ProductionTokenizer
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
    tmp_path: Path, tokenizer: ProductionTokenizer
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


def test_collate_trims_to_the_longest_caption(
    tmp_path: Path, tokenizer: ProductionTokenizer
) -> None:
    records = make_records(tmp_path, 2)
    records = [
        Record("a", records[0].image_path, ("image caption",)),
        Record("b", records[1].image_path, ("image caption word word",)),
    ]
    dataset = CaptionDataset(records, build_image_cache(records, 16, progress=False), tokenizer, 20)
    batch = collate_batch([dataset[0], dataset[1]])
    assert batch["tokens"].shape == (2, 6)  # <START> 4 words <END>
    assert batch["tokens"][1, -1] == tokenizer.end_id and batch["tokens"][0, -1] == 0
    assert batch["images"].shape == (2, 3, 16, 16) and batch["indices"].tolist() == [0, 1]
    assert collate_batch([dataset[0]])["tokens"].shape == (1, 4)


def test_loader_order_follows_seed_and_epoch(
    tmp_path: Path, tokenizer: ProductionTokenizer
) -> None:
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
    tmp_path: Path, tokenizer: ProductionTokenizer
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
def test_persistent_workers_see_set_epoch(tmp_path: Path, tokenizer: ProductionTokenizer) -> None:
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


# --------------------------------------------------------------------------- finding the data


def test_resolve_prefers_data_dir(tmp_path: Path) -> None:
    root = write_flickr8k(tmp_path / "flickr")
    source = resolve_data_source(Config(data_dir=root))
    assert (source.path, source.format, source.is_synthetic) == (root, "flickr8k", False)
    assert resolve_data_source(Config(data_dir=root, data_format="csv")).format == "csv"


def test_resolve_uses_the_seed_engravings_when_present(
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

    assert calls == [(tmp_path / "synthetic", {"n": 5141, "image_size": 128, "seed": 7})]
    assert first.is_synthetic and first.format == "seed" and first.path == config.synthetic_dir
    assert first.message == (
        f"No engravings at {config.metadata_path}; using the synthetic set at "
        f"{config.synthetic_dir}/ (generated now)"
    )
    assert "generated now" not in second.message
    assert len(load_records(first.path, first.format)[0]) == 3


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(
    not FLICKR_SAMPLES.is_dir(), reason=f"real samples not present at {FLICKR_SAMPLES}"
)
def test_real_flickr8k_sample(tmp_path: Path) -> None:
    records, report = load_records(FLICKR_SAMPLES)
    assert report.format == "flickr8k"
    assert (report.records, report.captions, report.skipped_count) == (200, 1000, 0)
    assert all(len(record.captions) == 5 for record in records)

    train, val = split_records(records, 0.1, seed=42)
    images = build_image_cache(train[:48], 64, cache_dir=tmp_path, progress=False)
    tokenizer = ProductionTokenizer(8000).build_vocab(c for r in train for c in r.captions)
    dataset = CaptionDataset(train[:48], images, tokenizer, max_length=40, seed=42)
    batch = next(iter(make_loader(dataset, 16, shuffle=True, seed=42)))

    assert (len(train), len(val)) == (180, 20)
    assert batch["images"].shape == (16, 3, 64, 64)
    assert batch["images"].min() >= -1 and batch["images"].max() <= 1
    assert batch["tokens"][:, 0].eq(tokenizer.start_id).all()


def test_load_split_reads_and_splits_the_configured_data(seed_dataset, tmp_path) -> None:
    root = seed_dataset(n=20)
    config = Config(data_dir=root, val_fraction=0.1, seed=3)
    split = data.load_split(config)
    assert split.source.format == "seed" and not split.source.is_synthetic
    assert (len(split.train), len(split.val), split.report.records) == (18, 2, 20)
    assert {r.id for r in split.train}.isdisjoint({r.id for r in split.val})
    assert split.val == data.split_records(data.load_records(root)[0], 0.1, 3)[1]


def test_starting_an_epoch_leaves_the_global_rng_alone(seed_dataset) -> None:
    records, _ = load_records(seed_dataset(n=8))
    images = build_image_cache(records, 16, cache_dir=None, progress=False)
    dataset = CaptionDataset(records, images, ProductionTokenizer().build_vocab(["a"]), 8)
    loader = make_loader(dataset, 4, shuffle=True, seed=0)
    before = torch.get_rng_state()
    next(iter(loader))
    assert torch.equal(before, torch.get_rng_state())
