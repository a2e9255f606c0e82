"""Tests for mmlib.data.readers: reading each format, bad input, the validation report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import write_bad_dataset, write_engraving, write_flickr8k
from PIL import Image

from mmlib.data import readers
from mmlib.data.readers import DatasetError, check_dataset, detect_format, load_records

# --------------------------------------------------------------------------- dataset files


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
        readers.NO_CAPTION: 1,
        readers.MISSING_IMAGE: 1,
        readers.EMPTY_IMAGE: 1,
        readers.UNREADABLE_IMAGE: 1,
        readers.CORRUPT_IMAGE: 1,
    }
    assert report.skipped[readers.MISSING_IMAGE] == [f"gone ({images / 'gone.png'})"]
    assert readers.CORRUPT_IMAGE not in quick.skipped and quick.records == 2  # headers only
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


# --------------------------------------------------------------------------- bad images

# Each bad image of `conftest.BAD_IMAGES`: the reason it is skipped for, and the words its
# report line must hold (the record, the path, what to do).
BAD_IMAGE_REPORTS = {
    "parent": (readers.OUTSIDE_IMAGES, ["parent (", "set/../../outside.png, outside ", "move"]),
    "absolute": (readers.OUTSIDE_IMAGES, ["absolute (", "a/elsewhere.png, outside ", "move"]),
    "truncated": (readers.CORRUPT_IMAGE, ["truncated (", "img/cut.jpg", "replace the file"]),
    "huge": (readers.TOO_LARGE, ["huge (", "huge.png, 10000x10000 px", "max_image_pixels"]),
    "bomb": (readers.TOO_LARGE, ["bomb (", "bomb.png, over 178,956,970 px", "max_image_pixels"]),
}


@pytest.mark.filterwarnings("error")  # PIL's DecompressionBombWarning must not reach the user
@pytest.mark.parametrize("name", sorted(BAD_IMAGE_REPORTS))
def test_a_bad_image_is_skipped_naming_its_record_path_and_what_to_do(
    tmp_path: Path, name: str
) -> None:
    reason, words = BAD_IMAGE_REPORTS[name]
    root = write_bad_dataset(tmp_path / "a/set", [name])

    report = check_dataset(root)

    assert report.records == 2 and list(report.skipped) == [reason]
    line = next(line for line in str(report).splitlines() if line.startswith(f"    {reason}"))
    assert [word for word in words if word not in line] == [], line
    assert readers.WHAT_TO_DO[reason] in line


def test_seed_paths_are_relative_to_the_images_folder_and_stay_inside_it(tmp_path: Path) -> None:
    root = write_seed(tmp_path, [{"id": "a", "filename": "a.png", "caption": "kept"}])
    write_engraving(root / "metadata/beside.png")
    (root / "processed/engraving/resized/sub").mkdir()
    items = [
        {"id": "a", "filename": "sub/../a.png", "caption": "kept"},
        {"id": "up", "filename": "../../../metadata/beside.png", "caption": "left"},
    ]
    (root / "metadata/engraving_metadata.json").write_text(json.dumps(items))

    records, report = load_records(root)

    assert [record.id for record in records] == ["a"]
    assert report.skipped == {
        readers.OUTSIDE_IMAGES: [
            f"up ({root / 'processed/engraving/resized/../../../metadata/beside.png'}, "
            f"outside {root / 'processed/engraving/resized'})"
        ]
    }


def test_tiny_images_are_kept_and_reported(tmp_path: Path) -> None:
    lines = []
    for name, size in [("dot", (1, 1)), ("strip", (40, 5)), ("small", (8, 8))]:
        Image.new("RGB", size, (200, 190, 170)).save(tmp_path / f"{name}.png")
        lines.append(json.dumps({"file": f"{name}.png", "caption": f"a {name}"}))
    (tmp_path / "d.jsonl").write_text("\n".join(lines))

    report = check_dataset(tmp_path)

    assert report.records == 3 and report.skipped_count == 0
    assert report.tiny == [
        f"dot ({tmp_path / 'dot.png'}, 1x1 px)",
        f"strip ({tmp_path / 'strip.png'}, 40x5 px)",
    ]
    text = str(report)
    assert "warning: tiny images (a side under 8 px)" in text and "dot (" in text
    assert "replace them with larger copies or remove the records" in text


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    original = readers._decodes

    def counting(path: Path) -> bool:
        calls.append(path)
        return original(path)

    monkeypatch.setattr(readers, "_decodes", counting)
    return calls


def test_decode_results_are_kept_so_only_new_or_changed_files_decode_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_bad_dataset(tmp_path / "set", ["truncated"], good=3)
    keep = {"verify_images": True, "decode_memo_dir": tmp_path / "cache"}
    decoded = count_decodes(monkeypatch)

    first = load_records(root, **keep)[1]
    second = load_records(root, **keep)[1]
    assert len(decoded) == 4 and second.skipped == first.skipped
    assert "results kept in" in str(second)

    changed = root / "img/good_1.png"
    changed.write_bytes(changed.read_bytes()[:-40])  # cut after the header was read
    third = load_records(root, **keep)[1]
    assert decoded[4:] == [changed]
    assert [label.split()[0] for label in third.skipped[readers.CORRUPT_IMAGE]] == [
        "good_1",
        "truncated",
    ]


def test_a_broken_or_unwritable_memo_only_costs_a_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_bad_dataset(tmp_path / "set", [], good=2)
    keep = {"verify_images": True, "decode_memo_dir": tmp_path / "cache"}
    decoded = count_decodes(monkeypatch)
    memo = load_records(root, **keep)[1].decode_memo
    assert memo is not None and memo.is_file()

    memo.write_text("{not json")
    assert len(load_records(root, **keep)[0]) == 2 and len(decoded) == 4

    def read_only(*args: Any) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(readers, "atomic_write_text", read_only)
    memo.unlink()
    assert len(load_records(root, **keep)[0]) == 2 and not memo.exists()
