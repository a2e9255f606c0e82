"""Reading captioned-image datasets: files -> `Record`s, one per image, and a `DataReport`.

Formats (`FORMATS`): `seed` (a metadata JSON + images folder, `Config`'s default paths'
layout), Flickr8k, JSONL, CSV, COCO captions and sidecar .txt files. Every problem with the input
is a `DatasetError` whose message names the file, the record and what to do.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from mmlib.config import DATA_FORMATS, DEFAULT_MAX_IMAGE_PIXELS, PIL_PIXEL_LIMIT
from mmlib.files import atomic_write_text

FORMATS = tuple(name for name in DATA_FORMATS if name != "auto")
SEED_METADATA = Path("metadata/engraving_metadata.json")
SEED_IMAGES = Path("processed/engraving/resized")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
FILE_COLUMNS = ("file", "filename", "file_name", "image")
CAPTION_COLUMNS = ("caption", "text", "captions")

# Reasons a record is skipped (keys of `DataReport.skipped`).
NO_CAPTION = "no caption"
MISSING_IMAGE = "missing image file"
EMPTY_IMAGE = "empty image file (0 bytes)"
UNREADABLE_IMAGE = "unreadable image file"
CORRUPT_IMAGE = "truncated or corrupt image file"
OUTSIDE_IMAGES = "image path outside the images folder"
TOO_LARGE = "image over the pixel limit"
# What to do about each reason, printed beside it in the report.
WHAT_TO_DO = {
    NO_CAPTION: "add a caption or remove the record",
    MISSING_IMAGE: "put the file there or fix its path",
    EMPTY_IMAGE: "replace the file",
    UNREADABLE_IMAGE: "replace it with a PNG or JPEG, or remove the record",
    CORRUPT_IMAGE: "replace the file (copy or export it again)",
    OUTSIDE_IMAGES: "move the image into that folder (paths are read relative to it and may "
    "not leave it)",
    TOO_LARGE: f"downscale it, or raise Config.max_image_pixels (at most {PIL_PIXEL_LIMIT:,})",
}
# Images with a side under this are reported as tiny (and still used): even at the smallest
# image_size (16) they are magnified at least 2x, so they hold mostly blur, and such images
# are usually icons, thumbnails or broken exports rather than pictures.
MIN_IMAGE_SIDE = 8
_MEMO_VERSION = 1  # of the decode results kept in `decode_memo_dir`


class DatasetError(ValueError):
    """A dataset cannot be read: the message names the file, the record and what to do."""


@dataclass(frozen=True)
class Record:
    """One image and all of its captions; extra metadata keys are kept in `attributes`."""

    id: str
    image_path: Path
    captions: tuple[str, ...]
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class DataReport:
    """What reading a dataset found: counts, skipped records by reason, converted image modes."""

    source: Path
    format: str
    records: int = 0
    images: int = 0
    captions: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    tiny: list[str] = field(default_factory=list)
    smallest_side: int | None = None
    largest_side: int | None = None
    images_decoded: bool = False
    decode_memo: Path | None = None

    @property
    def skipped_count(self) -> int:
        """Records left out, all reasons together."""
        return sum(len(labels) for labels in self.skipped.values())

    def skip(self, reason: str, label: str) -> None:
        """Count a record as skipped for `reason`."""
        self.skipped.setdefault(reason, []).append(label)

    def problems(self) -> str:
        """The skipped records by reason, each with what to do, and the tiny images kept."""
        lines = [f"  skipped: {self.skipped_count:,}"]
        for reason, labels in sorted(self.skipped.items()):
            lines.append(f"    {reason}: {len(labels):,} ({_shown(labels)}); {WHAT_TO_DO[reason]}")
        if self.tiny:
            lines.append(
                f"  warning: tiny images (a side under {MIN_IMAGE_SIDE} px), kept but scaled "
                f"up to image_size, so mostly blur: {len(self.tiny):,} ({_shown(self.tiny)}); "
                "replace them with larger copies or remove the records"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        per_image = self.captions / self.records if self.records else 0.0
        lines = [
            f"Dataset {self.source} ({self.format})",
            f"  usable records: {self.records:,} ({self.images:,} images, "
            f"{self.captions:,} captions, {per_image:.1f} per image)",
        ]
        if self.smallest_side is not None:
            lines.append(f"  image sides: {self.smallest_side}-{self.largest_side} px")
        if self.converted:
            modes = ", ".join(f"{mode} {n:,}" for mode, n in sorted(self.converted.items()))
            lines.append(f"  converted to RGB: {modes}")
        lines.append(self.problems())
        if not self.images_decoded:
            check = "headers only (verify_images=True decodes)"
        elif self.decode_memo is None:
            check = "every file decoded"
        else:
            check = f"every file decoded (unchanged files: results kept in {self.decode_memo})"
        lines.append(f"  images checked: {check}")
        return "\n".join(lines)


def _shown(labels: list[str]) -> str:
    """The first few labels, comma-separated."""
    return ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")


@dataclass
class _Entry:
    """A record as read, before grouping by image and checking its file."""

    id: str
    image_path: Path
    root: Path  # the images folder the path must stay inside
    captions: list[str]
    attributes: dict[str, Any]


def detect_format(source: str | os.PathLike[str]) -> str:
    """The format of a dataset file or folder: one of `FORMATS`."""
    source = _existing(Path(source))
    if source.is_file():
        return _detect_file_format(source)
    if (source / SEED_METADATA).is_file():
        return "seed"
    if (source / "captions.txt").is_file():
        return "flickr8k"
    for name in ("jsonl", "csv"):
        if any(source.glob(f"*.{name}")):
            return name
    if _json_files(source):
        return "coco"
    if any(path.suffix == ".txt" for path in source.rglob("*")):
        return "sidecar"
    raise DatasetError(
        f"{source}: cannot tell the dataset format. Expected {SEED_METADATA} (seed), "
        "captions.txt + Images/ (flickr8k), a .jsonl or .csv file, a COCO captions .json, or "
        "images with .txt captions beside them (sidecar); or name it with format=... "
        "(Config.data_format)"
    )


def _detect_file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".csv"):
        return suffix[1:]
    if suffix == ".txt":
        return "flickr8k"
    if suffix == ".json":
        data = _read_json(path)
        if isinstance(data, list):
            return "seed"
        if isinstance(data, dict) and "images" in data and "annotations" in data:
            return "coco"
    raise DatasetError(
        f"{path}: cannot tell the dataset format from this file; expected a seed metadata .json "
        "list, a COCO captions .json, a .jsonl, a .csv or a Flickr8k captions.txt; or name it "
        "with format=... (Config.data_format)"
    )


def load_records(
    source: str | os.PathLike[str],
    format: str = "auto",
    images_dir: str | os.PathLike[str] | None = None,
    *,
    verify_images: bool = False,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    decode_memo_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[Record], DataReport]:
    """Read a dataset into one `Record` per image, skipping unusable records (see the report).

    Image headers are always read: unreadable files, images with more than `max_image_pixels`
    and paths that leave the reader's images folder are skipped. `verify_images` also decodes
    every image, which finds truncated files at the cost of a full pass; with
    `decode_memo_dir`, the results are kept there and unchanged files are not decoded again.
    """
    source = _existing(Path(source))
    fmt = detect_format(source) if format == "auto" else format
    if fmt not in FORMATS:
        raise DatasetError(f"format={format!r}: allowed formats are auto, {', '.join(FORMATS)}")
    described, entries = _READERS[fmt](source, None if images_dir is None else Path(images_dir))
    memo = None
    if verify_images and decode_memo_dir is not None:
        memo = _decode_memo_path(Path(decode_memo_dir), described)
    report = DataReport(
        source=described, format=fmt, images_decoded=verify_images, decode_memo=memo
    )
    _refuse_duplicates(described, entries, one_record_per_image=fmt in ("seed", "coco"))
    grouped = _group_by_image(entries)
    records = _usable_records(grouped, report, max_image_pixels, verify_images, memo)
    if not records:
        raise DatasetError(
            f"{described}: no usable records ({report.skipped_count} skipped); "
            f"fix the problems listed below and retry.\n{report}"
        )
    return records, report


def check_dataset(
    source: str | os.PathLike[str],
    format: str = "auto",
    images_dir: str | os.PathLike[str] | None = None,
    verify_images: bool = True,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> DataReport:
    """Read and validate a dataset; `print()` the report for a readable summary."""
    return load_records(
        source, format, images_dir, verify_images=verify_images, max_image_pixels=max_image_pixels
    )[1]


def _decode_memo_path(folder: Path, source: Path) -> Path:
    """The file in `folder` that keeps which of `source`'s images decode."""
    digest = hashlib.sha256(os.path.abspath(source).encode()).hexdigest()[:16]
    return folder / f"decoded-{digest}.json"


def _read_seed(source: Path, images_dir: Path | None) -> tuple[Path, list[_Entry]]:
    if source.is_dir():
        metadata = source / SEED_METADATA
        images = images_dir or source / SEED_IMAGES
    else:
        metadata = source
        beside = source.parent.parent / SEED_IMAGES
        images = images_dir or (beside if beside.is_dir() else source.parent)
    if not metadata.is_file():
        raise DatasetError(
            f"{metadata}: metadata file not found; put the JSON list of "
            "{id, filename, caption} records there, or point Config.data_dir at another dataset"
        )
    _require_folder(images, "images folder", metadata)
    data = _read_json(metadata)
    if not isinstance(data, list):
        raise DatasetError(
            f"{metadata}: expected a JSON list of {{id, filename, caption}} records, "
            f"found a JSON {type(data).__name__}"
        )
    entries = []
    for index, item in enumerate(data):
        where = f"record {index}"
        if not isinstance(item, dict):
            raise DatasetError(f"{metadata}: {where} is not a JSON object; remove or fix it")
        filename = item.get("filename")
        record_id = str(item.get("id", index))
        if not isinstance(filename, str) or not filename.strip():
            raise DatasetError(
                f"{metadata}: {where} (id {record_id!r}) has no 'filename'; add the image file "
                f"name (relative to {images}) or remove the record"
            )
        captions = _captions(item.get("caption"), metadata, f"{where} (id {record_id!r})")
        extra = {k: v for k, v in item.items() if k not in ("id", "filename", "caption")}
        entries.append(_Entry(record_id, images / filename, images, captions, extra))
    return metadata, entries


def _read_flickr8k(source: Path, images_dir: Path | None) -> tuple[Path, list[_Entry]]:
    captions_file = source / "captions.txt" if source.is_dir() else source
    if not captions_file.is_file():
        raise DatasetError(
            f"{captions_file}: captions file not found; the Flickr8k layout is Images/ + "
            "captions.txt (a CSV with the header image,caption)"
        )
    images = images_dir or captions_file.parent / "Images"
    _require_folder(images, "images folder", captions_file)
    return captions_file, _table_entries(captions_file, [images])


def _read_csv(source: Path, images_dir: Path | None) -> tuple[Path, list[_Entry]]:
    path = _single_file(source, ".csv")
    return path, _table_entries(path, [images_dir or path.parent])


def _read_jsonl(source: Path, images_dir: Path | None) -> tuple[Path, list[_Entry]]:
    path = _single_file(source, ".jsonl")
    root = images_dir or path.parent
    entries = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(
                f"{path}: line {number}, column {error.colno}: not valid JSON ({error.msg}); "
                'each line must be one object such as {"file": ..., "caption": ...}'
            ) from None
        if not isinstance(item, dict):
            raise DatasetError(f"{path}: line {number} is not a JSON object; fix or remove it")
        entries.append(_row_entry(item, path, f"line {number}", [root]))
    return path, entries


def _read_coco(source: Path, images_dir: Path | None) -> tuple[Path, list[_Entry]]:
    path = source if source.is_file() else _coco_file(source)
    data = _read_json(path)
    if not (
        isinstance(data, dict)
        and isinstance(data.get("images"), list)
        and isinstance(data.get("annotations"), list)
    ):
        raise DatasetError(
            f"{path}: not a COCO captions file; expected an object with 'images' "
            "(id, file_name) and 'annotations' (image_id, caption)"
        )
    if images_dir is not None:
        roots = [images_dir]
    else:
        roots = [path.parent, path.parent / "images"]
        if source.is_dir() and source != path.parent:
            roots += [source, source / "images"]
    _refuse_repeated_image_ids(path, data["images"])
    entries: dict[Any, _Entry] = {}
    for index, image in enumerate(data["images"]):
        file_name = image.get("file_name") if isinstance(image, dict) else None
        if not isinstance(file_name, str) or not file_name.strip():
            raise DatasetError(
                f"{path}: images[{index}] has no 'file_name'; add it or remove the image"
            )
        extra = {k: v for k, v in image.items() if k not in ("id", "file_name")}
        image_id = image.get("id", index)
        entries[image_id] = _Entry(str(image_id), *_resolve(file_name, roots), [], extra)
    for index, annotation in enumerate(data["annotations"]):
        image_id = annotation.get("image_id") if isinstance(annotation, dict) else None
        if image_id not in entries:
            raise DatasetError(
                f"{path}: annotations[{index}] refers to image_id {image_id!r}, which is not in "
                "'images' (so it has no file name); add the image or remove the annotation"
            )
        entry = entries[image_id]
        where = f"annotations[{index}] (image_id {image_id!r})"
        entry.captions.extend(_captions(annotation.get("caption"), path, where))
    return path, list(entries.values())


def _read_sidecar(source: Path, images_dir: Path | None) -> tuple[Path, list[_Entry]]:
    folder = images_dir or source
    _require_folder(folder, "sidecar folder", folder)
    entries = []
    for image in sorted(folder.rglob("*")):
        if image.suffix.lower() not in IMAGE_SUFFIXES or not image.is_file():
            continue
        sidecar = image.with_suffix(".txt")
        text = _read_text(sidecar) if sidecar.is_file() else ""
        captions = [line.strip() for line in text.splitlines() if line.strip()]
        record_id = image.relative_to(folder).with_suffix("").as_posix()
        entries.append(_Entry(record_id, image, folder, captions, {}))
    return folder, entries


_READERS: dict[str, Callable[[Path, Path | None], tuple[Path, list[_Entry]]]] = {
    "seed": _read_seed,
    "flickr8k": _read_flickr8k,
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "coco": _read_coco,
    "sidecar": _read_sidecar,
}


def _table_entries(path: Path, roots: list[Path]) -> list[_Entry]:
    """Entries from a CSV file with a header (file and caption columns, extra columns kept)."""
    entries = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, strict=True)
        try:
            columns = _table_columns(path, reader.fieldnames)
            for row in reader:
                if None in row:  # more fields than the header names
                    raise DatasetError(
                        f"{path}: line {reader.line_num}, column {len(columns) + 1}: "
                        f"{len(columns) + len(row[None])} fields but the header has "
                        f"{len(columns)}; put captions that contain commas in double quotes"
                    )
                entries.append(_row_entry(row, path, f"line {reader.line_num}", roots))
        except csv.Error as error:
            raise DatasetError(_csv_error(path, reader.reader.line_num, error)) from None
        except UnicodeDecodeError as error:
            raise DatasetError(f"{path}: not UTF-8 text ({error}); save it as UTF-8") from None
    return entries


def _table_columns(path: Path, columns: Sequence[str] | None) -> Sequence[str]:
    """The header's columns, which must name a file column and a caption column."""
    if not columns:
        raise DatasetError(f"{path}: empty file; expected a header line such as file,caption")
    if not set(FILE_COLUMNS) & set(columns) or not set(CAPTION_COLUMNS) & set(columns):
        raise DatasetError(
            f"{path}: line 1: the header {','.join(columns)} lacks a file column "
            f"({'/'.join(FILE_COLUMNS)}) or a caption column ({'/'.join(CAPTION_COLUMNS)}); "
            "name the columns, for example file,caption"
        )
    return columns


def _row_entry(row: dict[str, Any], path: Path, where: str, roots: list[Path]) -> _Entry:
    """An entry from one CSV row or JSONL object, accepting the usual column names."""
    file_key = next((key for key in FILE_COLUMNS if key in row), None)
    caption_key = next((key for key in CAPTION_COLUMNS if key in row), None)
    if file_key is None or caption_key is None:
        raise DatasetError(
            f"{path}: {where} has keys {sorted(map(str, row))}; expected a file column "
            f"({'/'.join(FILE_COLUMNS)}) and a caption column ({'/'.join(CAPTION_COLUMNS)})"
        )
    file_name = row[file_key]
    if not isinstance(file_name, str) or not file_name.strip():
        raise DatasetError(
            f"{path}: {where} has no file name in column {file_key!r}; add it or remove the line"
        )
    record_id = Path(file_name).stem if row.get("id") in (None, "") else str(row["id"])
    extra = {k: v for k, v in row.items() if k not in (file_key, caption_key, "id")}
    captions = _captions(row[caption_key], path, where)
    return _Entry(record_id, *_resolve(file_name.strip(), roots), captions, extra)


def _captions(value: Any, path: Path, where: str) -> list[str]:
    """The non-blank captions of a record: a string, a list of strings, or nothing."""
    values = value if isinstance(value, list) else [value]
    captions = []
    for caption in values:
        if caption is None:
            continue
        if not isinstance(caption, str):
            raise DatasetError(
                f"{path}: {where} has a caption that is not text ({caption!r}); fix it"
            )
        if caption.strip():
            captions.append(caption.strip())
    return captions


def _refuse_repeated_image_ids(path: Path, images: list[Any]) -> None:
    """A DatasetError when an id is listed twice in COCO's 'images': read as one image, the
    later file would replace the earlier one and take its captions."""
    ids = Counter(image.get("id") for image in images if isinstance(image, dict) and "id" in image)
    repeated = [repr(image_id) for image_id, count in ids.items() if count > 1]
    if repeated:
        raise DatasetError(
            f"{path}: {len(repeated):,} image id(s) listed more than once in 'images' "
            f"({_shown(repeated)}); each image must be listed once: remove the duplicate records"
        )


def _refuse_duplicates(path: Path, entries: list[_Entry], one_record_per_image: bool) -> None:
    """A DatasetError when one image file is given to two records: two different ids, or (in
    formats with one record per image, seed and COCO) two records at all. Rows that repeat a
    file under the same id are that image's further captions (Flickr8k, CSV, JSONL)."""
    ids_by_file: dict[str, list[str]] = {}
    for entry in entries:
        ids_by_file.setdefault(_image_key(entry.image_path), []).append(entry.id)
    repeated = []
    for entry in entries:
        ids = ids_by_file.pop(_image_key(entry.image_path), [])
        shown = ids if one_record_per_image else list(dict.fromkeys(ids))
        if len(shown) > 1:
            name = os.path.relpath(entry.image_path, entry.root)
            repeated.append(f"{name} (ids {', '.join(shown[:3])}{', ...' * (len(shown) > 3)})")
    if repeated:
        raise DatasetError(
            f"{path}: {len(repeated):,} image file(s) given to more than one record: "
            f"{_shown(repeated)}; each image must be one record: remove the duplicate records"
        )


def _image_key(image_path: Path) -> str:
    """The image's path with `.` and `..` resolved as written, so that two spellings of one
    file are one image (links are not followed)."""
    return os.path.normpath(os.path.abspath(image_path))


def _group_by_image(entries: list[_Entry]) -> list[_Entry]:
    """One entry per image file, captions merged, so a split by record is a split by image."""
    grouped: dict[str, _Entry] = {}
    for entry in entries:
        key = _image_key(entry.image_path)
        if key in grouped:
            grouped[key].captions.extend(entry.captions)
        else:
            grouped[key] = _Entry(
                entry.id, entry.image_path, entry.root, list(entry.captions), entry.attributes
            )
    return list(grouped.values())


@dataclass(frozen=True)
class _Header:
    """What an image file's header says, or why the record cannot be used."""

    problem: str | None
    mode: str = ""
    size: tuple[int, int] | None = None
    note: str = ""  # said beside the path in the report


def _usable_records(
    entries: list[_Entry], report: DataReport, max_pixels: int, decode: bool, memo: Path | None
) -> list[Record]:
    """Records with captions and a usable image; everything else is counted in `report`."""
    with warnings.catch_warnings():  # images over PIL's limit are over ours: reported, not warned
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        headers = [_header(entry, max_pixels) for entry in entries]
        pairs = list(zip(entries, headers, strict=True))
        readable = [entry.image_path for entry, header in pairs if header.problem is None]
        broken = _undecodable(readable, memo) if decode else set()
    records = []
    modes: Counter[str] = Counter()
    sides: list[int] = []
    for entry, header in pairs:
        problem = header.problem or (CORRUPT_IMAGE if entry.image_path in broken else None)
        if problem or header.size is None:
            report.skip(problem or UNREADABLE_IMAGE, _label(entry, header))
            continue
        if min(header.size) < MIN_IMAGE_SIDE:
            report.tiny.append(_label(entry, header))
        if header.mode != "RGB":
            modes[header.mode] += 1
        sides += header.size
        records.append(Record(entry.id, entry.image_path, tuple(entry.captions), entry.attributes))
    report.records = report.images = len(records)
    report.captions = sum(len(record.captions) for record in records)
    report.converted = dict(modes)
    if sides:
        report.smallest_side, report.largest_side = min(sides), max(sides)
    return records


def _label(entry: _Entry, header: _Header) -> str:
    """How the report names a record: its id, its image's path and what the header said."""
    size = f", {header.size[0]}x{header.size[1]} px" if header.size else ""
    note = f", {header.note}" if header.note else ""
    return f"{entry.id} ({entry.image_path}{size}{note})"


def _header(entry: _Entry, max_pixels: int) -> _Header:
    """The header of the entry's image, or the first reason not to use the entry."""
    if not entry.captions:
        return _Header(NO_CAPTION)
    if not _inside(entry.image_path, entry.root):
        return _Header(OUTSIDE_IMAGES, note=f"outside {entry.root}")
    return _read_header(entry.image_path, max_pixels)


def _read_header(path: Path, max_pixels: int) -> _Header:
    """Mode and size from the file's header (nothing is decoded), or why it cannot be used."""
    try:
        if path.stat().st_size == 0:
            return _Header(EMPTY_IMAGE)
    except OSError:
        return _Header(MISSING_IMAGE)
    try:
        with Image.open(path) as image:
            mode, size = image.mode, image.size
    except Image.DecompressionBombError:  # over twice PIL's limit, so over ours
        return _Header(TOO_LARGE, note=f"over {2 * PIL_PIXEL_LIMIT:,} px")
    except (OSError, UnidentifiedImageError, ValueError):
        return _Header(UNREADABLE_IMAGE)
    if size[0] * size[1] > max_pixels:
        return _Header(TOO_LARGE, mode, size, f"over the limit of {max_pixels:,} px")
    return _Header(None, mode, size)


def _undecodable(paths: list[Path], memo: Path | None) -> set[Path]:
    """The files among `paths` that do not decode in full (truncated or corrupt).

    With `memo` (a JSON file), files unchanged since it was written (same path, size and mtime)
    are not decoded again; it is then rewritten with the results for `paths`.
    """
    stamps = {path: _stamp(path) for path in paths}
    remembered = _read_memo(memo) if memo else {}
    decodes = {path: remembered[s] for path, s in stamps.items() if s in remembered}
    todo = [path for path in paths if path not in decodes]
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # PIL releases the GIL
        decodes.update(zip(todo, pool.map(_decodes, todo), strict=True))
    if memo and todo:
        _write_memo(memo, {stamps[path]: ok for path, ok in decodes.items()})
    return {path for path, ok in decodes.items() if not ok}


def _decodes(path: Path) -> bool:
    """Whether the whole image decodes (truncated or corrupt files do not)."""
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


def _stamp(path: Path) -> str:
    """A file's absolute path, size and mtime: a decode result holds while these do."""
    stat = path.stat()
    return f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


def _read_memo(memo: Path) -> dict[str, bool]:
    """The decode results `memo` holds; none when it is absent, unreadable or of another version."""
    try:
        data = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _MEMO_VERSION:
        return {}
    decodes = data.get("decodes")
    if not isinstance(decodes, dict):
        return {}
    return {stamp: ok for stamp, ok in decodes.items() if isinstance(ok, bool)}


def _write_memo(memo: Path, decodes: dict[str, bool]) -> None:
    """Keep decode results; where they cannot be written, the next call decodes again."""
    with contextlib.suppress(OSError):
        atomic_write_text(memo, json.dumps({"version": _MEMO_VERSION, "decodes": decodes}))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path}: not valid JSON at line {error.lineno}, column {error.colno} ({error.msg}); "
            "fix the file there"
        ) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not UTF-8 text ({error}); save it as UTF-8") from None


def _csv_error(path: Path, line_number: int, error: csv.Error) -> str:
    """A malformed-CSV message with the line and, where the line alone shows it, the column."""
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    text = lines[line_number - 1] if 0 < line_number <= len(lines) else ""
    column = _csv_error_column(text, str(error))
    where = f"line {line_number}" + (f", column {column}" if column else "")
    return (
        f"{path}: {where}: malformed CSV ({error}): {text[:80]!r}; quote fields that contain "
        'commas or quotes ("a ""quoted"" word")'
    )


def _csv_error_column(line: str, message: str) -> int | None:
    """1-based column of a csv parse error: the shortest prefix of `line` that fails the same way.

    The csv module reports only the line; re-parsing prefixes of that one line finds the column.
    """
    for end in range(1, len(line) + 1):
        try:
            next(csv.reader([line[:end]], strict=True), None)
        except csv.Error as error:
            if str(error) == message:
                return end
    return None


def _single_file(source: Path, suffix: str) -> Path:
    if source.is_file():
        return source
    found = sorted(source.glob(f"*{suffix}")) if source.is_dir() else []
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise DatasetError(
            f"{source}: {what} {suffix} files in this folder; give the path of the one to use"
        )
    return found[0]


def _json_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) + sorted(folder.glob("annotations/*.json"))


def _coco_file(folder: Path) -> Path:
    candidates = _json_files(folder)
    captions = [path for path in candidates if path.name.startswith("captions")]
    if len(candidates) == 1 or len(captions) == 1:
        return candidates[0] if len(candidates) == 1 else captions[0]
    raise DatasetError(
        f"{folder}: expected one COCO captions .json here or in annotations/, found "
        f"{len(candidates)}; give the path of the one to use"
    )


def _resolve(file_name: str, roots: list[Path]) -> tuple[Path, Path]:
    """(path, root): the first root holding `file_name`, else the first root (reported missing)."""
    for root in roots:
        if (root / file_name).exists():
            return root / file_name, root
    return roots[0] / file_name, roots[0]


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, its `..` taken as written (links not followed), lies inside `root`."""
    return os.path.abspath(path).startswith(os.path.join(os.path.abspath(root), ""))


def _existing(source: Path) -> Path:
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder; check the path (Config.data_dir)")
    return source


def _require_folder(folder: Path, what: str, context: Path) -> None:
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: {what} not found (for {context}); create it or pass images_dir=..."
        )
