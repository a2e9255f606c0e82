"""Images as tensors: decoding and resizing files, the model's pixel range, and a decoded-image
cache (`build_image_cache`) so that an epoch does not decode the files again.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

from mmlib.config import DEFAULT_MAX_IMAGE_PIXELS, PIL_PIXEL_LIMIT, RESIZE_MODES
from mmlib.data.readers import DatasetError, Record
from mmlib.files import atomic_open, remove_temporaries
from mmlib.progress import progress_bar

DEFAULT_MEMMAP_THRESHOLD = 256 * 2**20

# Bump when decoding or resizing changes, so caches written by older code are not reused.
_CACHE_VERSION = "1"
_DECODE_CHUNK = 256  # images decoded ahead of the writer, at most


class ImageFileError(ValueError):
    """A file is not a readable image, or too large to decode; the message names the file and
    what to do."""


def load_image(
    path: str | os.PathLike[str],
    image_size: int,
    resize_mode: str = "pad",
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> torch.Tensor:
    """An image file as a uint8 RGB tensor [3, S, S], any mode converted, aspect kept.

    `resize_mode="pad"` scales the longer side to S and fills the rest with the median colour of
    the image's border (the paper tone of an engraving, the background of most photos), so no
    artificial frame appears; `"crop"` scales the shorter side to S and centre-crops.
    Transparent areas become white paper. Decoding is PIL's: torchvision.io's decoders are
    deprecated since torchvision 0.29, and PIL's JPEG draft mode makes it faster for small S.
    A file that is not an image, is empty or truncated, or whose header claims more than
    `max_pixels` pixels (checked before decoding) is an `ImageFileError`.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode={resize_mode!r}: allowed values are {RESIZE_MODES}")
    path = Path(path)
    try:
        with Image.open(path) as image:
            _check_pixels(path, image.size, max_pixels)
            image.draft(None, (image_size, image_size))  # JPEG: decode at 1/2..1/8 scale
            return pil_to_image(image, image_size, resize_mode)
    except ImageFileError:
        raise
    except Image.DecompressionBombError as error:  # PIL's own limit, above ours by default
        claimed = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(claimed.group(1)):,}" if claimed else "too many"
        raise ImageFileError(_too_large(path, pixels, max_pixels)) from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL's UnidentifiedImageError is one
        raise ImageFileError(
            f"{path}: not a readable image ({_reason(error)}); give a complete PNG or JPEG file"
        ) from None


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageFileError(_too_large(path, f"{width}x{height}", max_pixels))


def _too_large(path: Path, pixels: str, max_pixels: int) -> str:
    return (
        f"{path}: the image claims {pixels} pixels, over the limit of {max_pixels:,} that this "
        "library decodes (Config.max_image_pixels); downscale it first"
    )


def _reason(error: Exception) -> str:
    """PIL's reason without the path it repeats."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image format PIL knows, or an empty file"
    return str(error) or type(error).__name__


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
    memory-mapped. Without `cache_dir`, images are decoded into memory every time. Temporary
    files that killed writers left in `cache_dir` (caches, decode memos) are removed first.
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
    remove_temporaries(cache_dir)
    nbytes = math.prod(shape)
    if not path.is_file() or path.stat().st_size != nbytes:
        with atomic_open(path) as handle:  # a crash never leaves a half cache under `path`
            for image in images:
                handle.write(image.contiguous().numpy().tobytes())
    if nbytes > memmap_threshold_bytes:
        # A private mapping: pages load on demand and DataLoader workers share them.
        return torch.from_file(str(path), shared=False, size=nbytes, dtype=torch.uint8).view(shape)
    cached = torch.empty(shape, dtype=torch.uint8)
    with path.open("rb") as handle:
        # numpy's stubs declare ndarray.__buffer__ for Python >= 3.12 only.
        handle.readinto(cached.view(-1).numpy())  # type: ignore[arg-type]
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
        try:  # the records passed their run's own pixel limit (Config.max_image_pixels)
            return load_image(record.image_path, image_size, resize_mode, PIL_PIXEL_LIMIT)
        except (ImageFileError, RuntimeError) as error:
            raise DatasetError(
                f"record {record.id!r}: {error}; run check_dataset(...) to list every bad file, "
                "then fix or remove them"
            ) from error

    desc = f"Decoding images to {image_size}px"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with (
            ThreadPoolExecutor(workers) as pool,
            progress_bar(total=len(records), desc=desc, unit="img", enabled=progress) as bar,
        ):
            for start in range(0, len(records), _DECODE_CHUNK):
                for image in pool.map(decode, records[start : start + _DECODE_CHUNK]):
                    bar.update()
                    yield image
    finally:
        torch.set_num_threads(threads)
