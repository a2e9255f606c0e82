"""Duplicate records (issue 22): an image id listed twice in a COCO file's 'images', or one image
file given to two records or ids in any format, is refused in one line naming the file, the
first repeated ids or file names and what to do; several captions of one image are not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_engraving

from mmlib.cli import main
from mmlib.data.readers import DatasetError, load_records

REMEDY = "remove the duplicate records"


def write_coco(root: Path, images: list[tuple[int, str]]) -> Path:
    """A COCO captions file over (id, file name) images, two captions per listed image."""
    for _, file_name in images:
        write_engraving(root / file_name, shade=len(file_name))
    annotations = [
        {"image_id": image_id, "caption": f"an engraving {image_id} view {view}"}
        for image_id, _ in images
        for view in range(2)
    ]
    listed = [{"id": image_id, "file_name": file_name} for image_id, file_name in images]
    path = root / "captions.json"
    path.write_text(json.dumps({"images": listed, "annotations": annotations}))
    return path


def coco_repeated_ids(root: Path) -> Path:
    return write_coco(root, [(i // 2, f"{i}.png") for i in range(40)])


def coco_repeated_file(root: Path) -> Path:
    return write_coco(root, [(0, "a.png"), (1, "b.png"), (2, "a.png")])


def seed_repeated_file(root: Path) -> Path:
    write_engraving(root / "a.png")
    write_engraving(root / "b.png", shade=1)
    records = [
        {"id": 0, "filename": "a.png", "caption": "a ship"},
        {"id": 1, "filename": "b.png", "caption": "a tower"},
        {"id": 2, "filename": "a.png", "caption": "a moon"},
    ]
    path = root / "metadata.json"
    path.write_text(json.dumps(records))
    return path


def csv_file_under_two_ids(root: Path) -> Path:
    write_engraving(root / "a.png")
    path = root / "d.csv"
    path.write_text("id,file,caption\nx,a.png,a ship\ny,a.png,a tower\n")
    return path


def jsonl_file_under_two_ids(root: Path) -> Path:
    write_engraving(root / "img/a.png")
    lines = [
        {"id": "x", "file": "img/a.png", "caption": "a ship"},
        {"id": "y", "file": "img/../img/a.png", "caption": "a tower"},
    ]
    path = root / "d.jsonl"
    path.write_text("\n".join(map(json.dumps, lines)) + "\n")
    return path


def flickr8k_file_under_two_ids(root: Path) -> Path:
    write_engraving(root / "Images/a.jpg")
    write_engraving(root / "Images/b.jpg", shade=1)
    rows = ["image,caption,id", "a.jpg,a dog,1", "a.jpg,a dog runs,1", "b.jpg,a cat,2", "a.jpg,x,3"]
    (root / "captions.txt").write_text("\n".join(rows) + "\n")
    return root


# (dataset writer, the line's file, what it must quote)
DUPLICATES: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "coco-ids": (
        coco_repeated_ids,
        "captions.json",
        "20 image id(s) listed more than once in 'images' (0, 1, 2, 3, 4, ...)",
    ),
    "coco-file": (coco_repeated_file, "captions.json", "a.png (ids 0, 2)"),
    "seed-file": (seed_repeated_file, "metadata.json", "a.png (ids 0, 2)"),
    "csv": (csv_file_under_two_ids, "d.csv", "a.png (ids x, y)"),
    "jsonl": (jsonl_file_under_two_ids, "d.jsonl", "img/a.png (ids x, y)"),
    "flickr8k": (flickr8k_file_under_two_ids, "captions.txt", "a.jpg (ids 1, 3)"),
}


@pytest.mark.parametrize("case", DUPLICATES)
def test_data_check_refuses_duplicates_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    write, file_name, quoted = DUPLICATES[case]
    source = write(tmp_path / "data")
    assert main(["data", "check", str(source)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {tmp_path / 'data'}/")
    assert file_name in captured.err and quoted in captured.err and REMEDY in captured.err


def test_train_refuses_repeated_coco_ids_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = coco_repeated_ids(tmp_path / "data")
    run = tmp_path / "checkpoints/dup"
    args = ["train", "--data", str(source), "--run", "dup", "--no-imagine"]
    args += ["--set", f"checkpoint_dir={run.parent}", "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "STEP 2" not in captured.out
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {source}: 20 image id(s) listed more than once")
    assert not (run / "last.pt").exists()


def test_several_captions_of_one_image_are_one_record(tmp_path: Path) -> None:
    coco = write_coco(tmp_path / "coco", [(7, "a.png"), (8, "b.png")])
    write_engraving(tmp_path / "csv/img/a.png")
    rows = "file,caption\nimg/a.png,a ship\nimg/../img/a.png,a tower\n./img/a.png,a moon\n"
    (tmp_path / "csv/d.csv").write_text(rows)
    records, _ = load_records(coco)
    assert [(r.id, len(r.captions)) for r in records] == [("7", 2), ("8", 2)]
    records, _ = load_records(tmp_path / "csv/d.csv")
    assert [(r.id, r.captions) for r in records] == [("a", ("a ship", "a tower", "a moon"))]


def test_the_line_shows_the_first_five_repeated_files_only(tmp_path: Path) -> None:
    images = [(i, f"{i % 8}.png") for i in range(16)]
    with pytest.raises(DatasetError) as info:
        load_records(write_coco(tmp_path, images))
    message = str(info.value)
    assert "8 image file(s) given to more than one record: 0.png (ids 0, 8), " in message
    assert "4.png (ids 4, 12), ...; each image must be one record" in message
    assert "5.png" not in message
