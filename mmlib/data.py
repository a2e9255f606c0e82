"""Captioned-image datasets: reading and checking them, the split, a decoded-image cache, loaders.

Data flows one way: files -> `Record`s (`load_records`) -> a uint8 image cache
(`build_image_cache`) -> `CaptionDataset` -> `make_loader`. Every problem with the input is a
`DatasetError` whose message names the file, the record and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from mmlib.config import DATA_FORMATS, RESIZE_MODES, Config

FORMATS = tuple(name for name in DATA_FORMATS if name != "auto")
SEED_METADATA = Path("metadata/engraving_metadata.json")
SEED_IMAGES = Path("processed/engraving/resized")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
FILE_COLUMNS = ("file", "filename", "file_name", "image")
CAPTION_COLUMNS = ("caption", "text", "captions")
PAD_ID = 0  # the tokenizer's <PAD>; `collate_batch` trims trailing pads
DEFAULT_MEMMAP_THRESHOLD = 256 * 2**20
SYNTHETIC_SIZE = 5141

# Reasons a record is skipped (keys of `DataReport.skipped`).
NO_CAPTION = "no caption"
MISSING_IMAGE = "missing image file"
EMPTY_IMAGE = "empty image file (0 bytes)"
UNREADABLE_IMAGE = "unreadable image file"
CORRUPT_IMAGE = "truncated or corrupt image file"

# Bump when decoding or resizing changes, so caches written by older code are not reused.
_CACHE_VERSION = "1"
_DECODE_CHUNK = 256  # images decoded ahead of the writer, at most


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
    smallest_side: int | None = None
    largest_side: int | None = None
    images_decoded: bool = False

    @property
    def skipped_count(self) -> int:
        """Records left out, all reasons together."""
        return sum(len(labels) for labels in self.skipped.values())

    def skip(self, reason: str, label: str) -> None:
        """Count a record as skipped for `reason`."""
        self.skipped.setdefault(reason, []).append(label)

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
        lines.append(f"  skipped: {self.skipped_count:,}")
        for reason, labels in sorted(self.skipped.items()):
            shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
            lines.append(f"    {reason}: {len(labels):,} ({shown})")
        check = (
            "every file decoded"
            if self.images_decoded
            else "headers only (verify_images=True decodes)"
        )
        lines.append(f"  images checked: {check}")
        return "\n".join(lines)


@dataclass
class _Entry:
    """A record as read, before grouping by image and checking its file."""

    id: str
    image_path: Path
    captions: list[str]
    attributes: dict[str, Any]


# --------------------------------------------------------------------------- reading


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
) -> tuple[list[Record], DataReport]:
    """Read a dataset into one `Record` per image, skipping unusable records (see the report).

    Image headers are always read (unreadable files are skipped); `verify_images` also decodes
    every image, which finds truncated files at the cost of a full pass.
    """
    source = _existing(Path(source))
    fmt = detect_format(source) if format == "auto" else format
    if fmt not in FORMATS:
        raise DatasetError(f"format={format!r}: allowed formats are auto, {', '.join(FORMATS)}")
    described, entries = _READERS[fmt](source, None if images_dir is None else Path(images_dir))
    report = DataReport(source=described, format=fmt, images_decoded=verify_images)
    records = _usable_records(_group_by_image(entries), report, verify_images)
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
) -> DataReport:
    """Read and validate a dataset; `print()` the report for a readable summary."""
    return load_records(source, format, images_dir, verify_images=verify_images)[1]


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
        entries.append(_Entry(record_id, images / filename, captions, extra))
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
    entries: dict[Any, _Entry] = {}
    for index, image in enumerate(data["images"]):
        file_name = image.get("file_name") if isinstance(image, dict) else None
        if not isinstance(file_name, str) or not file_name.strip():
            raise DatasetError(
                f"{path}: images[{index}] has no 'file_name'; add it or remove the image"
            )
        extra = {k: v for k, v in image.items() if k not in ("id", "file_name")}
        image_id = image.get("id", index)
        entries[image_id] = _Entry(str(image_id), _resolve(file_name, roots), [], extra)
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
        entries.append(_Entry(record_id, image, captions, {}))
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
    return _Entry(record_id, _resolve(file_name.strip(), roots), captions, extra)


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


def _group_by_image(entries: list[_Entry]) -> list[_Entry]:
    """One entry per image file, captions merged, so a split by record is a split by image."""
    grouped: dict[Path, _Entry] = {}
    for entry in entries:
        if entry.image_path in grouped:
            grouped[entry.image_path].captions.extend(entry.captions)
        else:
            grouped[entry.image_path] = _Entry(
                entry.id, entry.image_path, list(entry.captions), entry.attributes
            )
    return list(grouped.values())


def _usable_records(entries: list[_Entry], report: DataReport, decode: bool) -> list[Record]:
    """Records with captions and a readable image; everything else is counted in `report`."""
    records = []
    modes: Counter[str] = Counter()
    sides: list[int] = []
    for entry in entries:
        if not entry.captions:
            report.skip(NO_CAPTION, entry.id)
            continue
        problem, mode, size = _inspect_image(entry.image_path, decode)
        if problem:
            report.skip(problem, f"{entry.id} ({entry.image_path})")
            continue
        if mode != "RGB":
            modes[mode] += 1
        sides += size
        records.append(Record(entry.id, entry.image_path, tuple(entry.captions), entry.attributes))
    report.records = report.images = len(records)
    report.captions = sum(len(record.captions) for record in records)
    report.converted = dict(modes)
    if sides:
        report.smallest_side, report.largest_side = min(sides), max(sides)
    return records


def _inspect_image(path: Path, decode: bool) -> tuple[str | None, str, tuple[int, ...]]:
    """(problem or None, PIL mode, size) from the file's header, or a full decode."""
    try:
        if path.stat().st_size == 0:
            return EMPTY_IMAGE, "", ()
    except OSError:
        return MISSING_IMAGE, "", ()
    try:
        image = Image.open(path)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return UNREADABLE_IMAGE, "", ()
    with image:
        mode, size = image.mode, image.size
        if decode:
            try:
                image.load()
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                return CORRUPT_IMAGE, mode, size
    return None, mode, size


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


def _resolve(file_name: str, roots: list[Path]) -> Path:
    """The first root holding `file_name`; the first root if none does (reported missing)."""
    for root in roots:
        if (root / file_name).exists():
            return root / file_name
    return roots[0] / file_name


def _existing(source: Path) -> Path:
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder; check the path (Config.data_dir)")
    return source


def _require_folder(folder: Path, what: str, context: Path) -> None:
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: {what} not found (for {context}); create it or pass images_dir=..."
        )


# --------------------------------------------------------------------------- images


def load_image(
    path: str | os.PathLike[str], image_size: int, resize_mode: str = "pad"
) -> torch.Tensor:
    """An image file as a uint8 RGB tensor [3, S, S], any mode converted, aspect kept.

    `resize_mode="pad"` scales the longer side to S and fills the rest with the median colour of
    the image's border (the paper tone of an engraving, the background of most photos), so no
    artificial frame appears; `"crop"` scales the shorter side to S and centre-crops.
    Transparent areas become white paper. Decoding is PIL's: torchvision.io's decoders are
    deprecated since torchvision 0.29, and PIL's JPEG draft mode makes it faster for small S.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode={resize_mode!r}: allowed values are {RESIZE_MODES}")
    with Image.open(Path(path)) as image:
        image.draft(None, (image_size, image_size))  # JPEG: decode at 1/2..1/8 scale, sides >= S
        return pil_to_image(image, image_size, resize_mode)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images [..., C, H, W] in 0..255 as float in [-1, 1], the model's input range."""
    return images.to(torch.float32, copy=True).div_(127.5).sub_(1.0)


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Model outputs in [-1, 1] as uint8 images in 0..255, on the CPU."""
    return pixels.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).byte().cpu()


def pil_to_image(image: Image.Image, image_size: int, resize_mode: str = "pad") -> torch.Tensor:
    """A PIL image (any mode, EXIF-rotated) as `load_image` returns it: uint8 RGB [3, S, S]."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: scale, don't clip
        image = image.convert("I").point(lambda value: value / 257).convert("L")
    if "A" in image.getbands() or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return fit_image(TF.pil_to_tensor(image.convert("RGB")), image_size, resize_mode)


def fit_image(image: torch.Tensor, size: int, resize_mode: str = "pad") -> torch.Tensor:
    """A [C, H, W] image scaled to [C, size, size]: padded with its border colour or cropped."""
    height, width = image.shape[-2:]
    if (height, width) == (size, size):
        return image
    if resize_mode == "crop":
        scale = size / min(height, width)
        shape = [max(size, round(height * scale)), max(size, round(width * scale))]
        return TF.center_crop(TF.resize(image, shape, antialias=True), [size, size])
    scale = size / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    image = TF.resize(image, [new_height, new_width], antialias=True)
    canvas = _border_colour(image).view(3, 1, 1).repeat(1, size, size)
    top, left = (size - new_height) // 2, (size - new_width) // 2
    canvas[:, top : top + new_height, left : left + new_width] = image
    return canvas


def _border_colour(image: torch.Tensor) -> torch.Tensor:
    border = torch.cat([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], dim=1)
    return border.median(dim=1).values


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


# --------------------------------------------------------------------------- cache


def build_image_cache(
    records: Sequence[Record],
    image_size: int,
    resize_mode: str = "pad",
    cache_dir: str | os.PathLike[str] | None = None,
    memmap_threshold_bytes: int = DEFAULT_MEMMAP_THRESHOLD,
    progress: bool = True,
    workers: int | None = None,
) -> torch.Tensor:
    """Every record's image decoded once into a uint8 tensor [N, 3, S, S].

    With `cache_dir`, the result is also a file there, keyed by the files' paths, sizes and
    mtimes, the size and the resize mode, so a later run (or a changed source) reuses (or
    rebuilds) it. Caches up to `memmap_threshold_bytes` are read into memory; larger ones are
    memory-mapped. Without `cache_dir`, images are decoded into memory every time.
    `workers` threads decode (default: one per CPU, at most 8).
    """
    shape = (len(records), 3, image_size, image_size)
    workers = workers or min(8, os.cpu_count() or 1)
    images = _decode_records(records, image_size, resize_mode, progress, workers)
    if cache_dir is None:
        decoded = torch.empty(shape, dtype=torch.uint8)
        for index, image in enumerate(images):
            decoded[index] = image
        return decoded
    path = cache_path(records, image_size, resize_mode, cache_dir)
    nbytes = math.prod(shape)
    if not path.is_file() or path.stat().st_size != nbytes:
        _write_atomically(path, images)
    if nbytes > memmap_threshold_bytes:
        # A private mapping: pages load on demand and DataLoader workers share them.
        return torch.from_file(str(path), shared=False, size=nbytes, dtype=torch.uint8).view(shape)
    cached = torch.empty(shape, dtype=torch.uint8)
    with path.open("rb") as handle:
        handle.readinto(cached.view(-1).numpy())
    return cached


def cache_path(
    records: Sequence[Record],
    image_size: int,
    resize_mode: str,
    cache_dir: str | os.PathLike[str],
) -> Path:
    """The cache file for these records and settings (it may not exist yet)."""
    digest = hashlib.sha256(f"{_CACHE_VERSION}|{image_size}|{resize_mode}".encode())
    for record in records:
        stat = record.image_path.stat()
        path = os.path.abspath(record.image_path)
        digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    name = f"images-{image_size}-{resize_mode}-{len(records)}-{digest.hexdigest()[:20]}.u8"
    return Path(cache_dir) / name


def _decode_records(
    records: Sequence[Record], image_size: int, resize_mode: str, progress: bool, workers: int
) -> Iterator[torch.Tensor]:
    """The records' images in order, decoded by a pool of threads (PIL and torch release the GIL).

    Each image is too small for torch's intra-op threads to pay off; with busy cores their
    fork-join costs milliseconds per op, so they are turned off while decoding.
    """

    def decode(record: Record) -> torch.Tensor:
        try:
            return load_image(record.image_path, image_size, resize_mode)
        except (OSError, RuntimeError, SyntaxError, Image.DecompressionBombError) as error:
            raise DatasetError(
                f"{record.image_path}: cannot decode the image of record {record.id!r} ({error}); "
                "run check_dataset(...) to list every bad file, then fix or remove them"
            ) from error

    desc = f"Decoding images to {image_size}px"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with (
            ThreadPoolExecutor(workers) as pool,
            tqdm(total=len(records), desc=desc, unit="img", disable=not progress) as bar,
        ):
            for start in range(0, len(records), _DECODE_CHUNK):
                for image in pool.map(decode, records[start : start + _DECODE_CHUNK]):
                    bar.update()
                    yield image
    finally:
        torch.set_num_threads(threads)


def _write_atomically(path: Path, images: Iterator[torch.Tensor]) -> None:
    """Write to a temporary file, then rename: a crash never leaves a half cache under `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for image in images:
                handle.write(image.contiguous().numpy().tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- dataset


class Tokenizer(Protocol):
    """What `CaptionDataset` needs of a tokenizer (`mmlib.tokenizer.ProductionTokenizer`)."""

    def batch_encode(self, captions: Sequence[str], max_length: int = ...) -> torch.Tensor: ...


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
        sampler = DistributedSampler(
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


def set_loader_epoch(loader: DataLoader[Any], epoch: int) -> None:
    """Set the epoch of the loader's order and, for training, of its caption choice."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    if isinstance(loader.dataset, CaptionDataset):
        loader.dataset.set_epoch(epoch)


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
    """`config.data_dir`, else the seed's engravings, else the synthetic set (made if missing)."""
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


def load_split(config: Config) -> SplitData:
    """Find the data (`resolve_data_source`), read it and split it by image, as a run does."""
    source = resolve_data_source(config)
    records, report = load_records(source.path, source.format, source.images_dir)
    train, val = split_records(records, config.val_fraction, config.seed)
    return SplitData(source, report, train, val)
