"""Image intake: read the raw bytes of an image value, decode once, check it, resize only when out of range.

Image values accepted by :func:`read_image_bytes` (the forms multimodal math sets use):

* ``{"bytes": b"...", "path": "..."}`` (Hugging Face ``datasets`` Image form; ``bytes`` may be None, then ``path``
  is read),
* ``bytes`` (raw encoded image),
* ``str`` / ``os.PathLike``: a file path (relative paths resolve against ``root``), or a base64 string / ``data:``
  URI when ``encoding`` says so.

Paths are untrusted input: with a ``root`` only regular files inside it are read (after resolving ``..`` and
symlinks), and nothing larger than ``max_bytes``. A FIFO, a device or ``/dev/zero`` is refused from ``stat`` before
it is opened, so it can neither hang nor exhaust the converter's memory.

The pixel range follows Qwen2.5-VL's ``smart_resize`` (qwen-vl-utils ``vision_process.py``): the processor maps
every image into ``[min_pixels, max_pixels]`` anyway, so storing images outside that range only wastes disk
(too big) or leaves the upscaling to every epoch (too small). Images inside the range are stored byte-for-byte.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import math
import os
import re
import stat
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from data_prep.errors import (
    BAD_IMAGE_PATH,
    BAD_IMAGE_SHAPE,
    CORRUPT_IMAGE,
    IMAGE_TOO_LARGE,
    MISSING_IMAGE,
    UNREADABLE_IMAGE,
    RowRejected,
)
from data_prep.prompts import MAX_PIXELS, MIN_PIXELS

#: qwen-vl-utils ``MAX_RATIO``: ``smart_resize`` raises for a longer/shorter side ratio above this.
MAX_ASPECT_RATIO = 200
#: Greyscale modes with more than 8 bits per sample (16-bit PNG/TIFF). ``convert("RGB")`` - what the Qwen2.5-VL
#: processor does - clips their 0..65535 samples at 255, turning all but the darkest pixels white.
HIGH_BIT_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
#: Largest encoded image read by default (bytes). A 16384x28x28-pixel RGB image is ~38 MB even uncompressed.
DEFAULT_MAX_IMAGE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class RawImage:
    """Encoded image bytes as read from the input, before any decoding.

    Attributes:
        data: the encoded file bytes (JPEG, PNG, ...). Their SHA-256 feeds the prompt id.
        path: where they came from (file path or the dataset's ``path`` entry), or None.
    """

    data: bytes
    path: str | None


@dataclass(frozen=True)
class PreparedImage:
    """A checked image ready to store.

    Attributes:
        data: encoded bytes to store: the input bytes unchanged when the image was in range, else re-encoded.
        path: the source path (kept for traceability only; readers use ``data``).
        width, height: pixel size of ``data`` after any resize.
        resized: True when the image was outside ``[min_pixels, max_pixels]`` and got scaled.
    """

    data: bytes
    path: str | None
    width: int
    height: int
    resized: bool

    def as_row_value(self) -> dict[str, Any]:
        """The ``{"bytes", "path"}`` dict verl's ``RLHFDataset`` and HF ``datasets`` read as an image."""
        return {"bytes": self.data, "path": self.path}


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _check_size(size: int, max_bytes: int | None, what: str, field: str) -> None:
    if max_bytes is not None and size > max_bytes:
        raise RowRejected(field, IMAGE_TOO_LARGE, f"{what}: {size} bytes > the cap of {max_bytes} (--max-image-bytes)")


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    return os.path.realpath(root)  # once per root: a converter resolves thousands of paths against one root


def _confined_path(text: str, root: str | os.PathLike | None, field: str) -> str:
    """``text`` resolved (symlinks and ``..`` included) and checked to lie inside ``root``."""
    if root is None:
        return os.path.abspath(text)
    real_root = _real_root(os.fspath(root))
    real = os.path.realpath(os.path.join(real_root, text))
    if os.path.commonpath([real_root, real]) != real_root:
        raise RowRejected(field, BAD_IMAGE_PATH, f"{text!r} resolves to {real}, outside the image root {real_root}")
    return real


def _read_file(text: str, root: str | os.PathLike | None, field: str, max_bytes: int | None) -> bytes:
    path = _confined_path(text, root, field)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise RowRejected(field, MISSING_IMAGE, f"no such file: {path}") from None
    except OSError as exc:
        raise RowRejected(field, UNREADABLE_IMAGE, f"{path}: {exc}") from exc
    # Decided from stat, before any open(): opening a FIFO blocks until a writer appears; /dev/zero never ends.
    if not stat.S_ISREG(info.st_mode):
        raise RowRejected(field, UNREADABLE_IMAGE, f"{path}: not a regular file ({_file_kind(info.st_mode)})")
    _check_size(info.st_size, max_bytes, path, field)
    try:
        # O_NONBLOCK|O_NOFOLLOW and the fstat below cover a file swapped for a FIFO or a symlink since the stat.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise RowRejected(field, UNREADABLE_IMAGE, f"{path}: {exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RowRejected(field, UNREADABLE_IMAGE, f"{path}: changed into a non-regular file while read")
        limit = -1 if max_bytes is None else max_bytes + 1  # a file that grew since stat stops here
        try:
            data = fh.read(limit)
        except OSError as exc:
            raise RowRejected(field, UNREADABLE_IMAGE, f"{path}: {exc}") from exc
    _check_size(len(data), max_bytes, path, field)
    return data


def _decode_base64(text: str, field: str) -> bytes:
    if text.startswith("data:"):
        _, _, text = text.partition("base64,")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RowRejected(field, UNREADABLE_IMAGE, f"invalid base64: {exc}") from exc


def read_image_bytes(
    value: Any,
    *,
    root: str | os.PathLike | None = None,
    encoding: str = "auto",
    field: str = "image",
    max_bytes: int | None = DEFAULT_MAX_IMAGE_BYTES,
) -> RawImage:
    """Read one image value into its encoded bytes (no decoding yet).

    Args:
        value: a ``{"bytes", "path"}`` dict, raw ``bytes``, or a string (path, base64 or ``data:`` URI).
        root: the dataset root. Relative paths resolve against it, and a path (relative or absolute) is read only
            when it names a regular file inside it after ``..`` and symlinks are resolved. None: no confinement
            (library use with trusted paths; relative paths resolve against the current directory); the
            regular-file and size checks still apply.
        encoding: how to read a string: ``"path"``, ``"base64"``, or ``"auto"`` (``data:`` URIs are base64,
            anything else is a path).
        field: the input field name, for the reject record.
        max_bytes: largest encoded image accepted, in bytes (files, raw bytes and base64 alike); None: no cap.

    Returns:
        :class:`RawImage`.

    Raises:
        RowRejected: ``missing_image`` (None, empty, or a path that does not exist), ``bad_image_path`` (a path
            out of ``root``), ``unreadable_image`` (I/O error, not a regular file: directory, FIFO, device;
            invalid base64), ``image_too_large`` (over ``max_bytes``).
    """
    if encoding not in ("auto", "path", "base64"):
        raise ValueError(f"encoding must be auto, path or base64, got {encoding!r}")
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data:
            _check_size(len(data), max_bytes, f"{field} bytes", field)
            return RawImage(bytes(data), path)
        if path:
            return read_image_bytes(path, root=root, encoding="path", field=field, max_bytes=max_bytes)
        raise RowRejected(field, MISSING_IMAGE, "image dict has neither bytes nor path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not value:
            raise RowRejected(field, MISSING_IMAGE, "empty image bytes")
        _check_size(len(value), max_bytes, f"{field} bytes", field)
        return RawImage(bytes(value), None)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not text:
            raise RowRejected(field, MISSING_IMAGE, "empty image value")
        if encoding == "base64" or (encoding == "auto" and text.startswith("data:")):
            data = _decode_base64(text, field)
            _check_size(len(data), max_bytes, f"{field} base64", field)
            return RawImage(data, None)
        return RawImage(_read_file(text, root, field, max_bytes), text)
    if value is None:
        raise RowRejected(field, MISSING_IMAGE, "image value is null")
    raise RowRejected(field, UNREADABLE_IMAGE, f"unsupported image value of type {type(value).__name__}")


def target_size(width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Size to resize ``width x height`` to so that its area lies in ``[min_pixels, max_pixels]``.

    Keeps the aspect ratio (up to rounding); returns the input size when already in range. Upscaling rounds up and
    downscaling rounds down so the result never falls back out of the range.

    Returns:
        ``(new_width, new_height)`` in pixels.
    """
    area = width * height
    if min_pixels <= area <= max_pixels:
        return width, height
    if area < min_pixels:
        scale = math.sqrt(min_pixels / area)
        return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))
    scale = math.sqrt(max_pixels / area)
    w, h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    while w * h > max_pixels:  # floor on both sides can still overshoot by a hair for extreme ratios
        if w >= h:
            w -= 1
        else:
            h -= 1
    return w, h


def _to_8_bit(image: Image.Image) -> Image.Image:
    """A :data:`HIGH_BIT_DEPTH_MODES` image as 8-bit greyscale (``L``), 0..65535 scaled linearly to 0..255.

    Mode ``I`` (32-bit int) is read as 16-bit data, its usual source (16-bit greyscale PNG, TIFF); samples outside
    0..65535 are clipped.
    """
    samples = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
    return Image.fromarray(((samples * 255 + 32767) // 65535).astype(np.uint8))


def _encode(image: Image.Image, source_format: str | None) -> bytes:
    buf = io.BytesIO()
    if source_format == "JPEG" and image.mode in ("RGB", "L"):
        image.save(buf, format="JPEG", quality=95)
    else:  # PNG is lossless and keeps alpha; any other source format is normalised to it
        image.save(buf, format="PNG")
    return buf.getvalue()


def prepare_image(
    raw: RawImage, *, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS, field: str = "image"
) -> PreparedImage:
    """Decode ``raw`` once, check it, and resize it into ``[min_pixels, max_pixels]`` only when outside.

    Args:
        raw: the encoded bytes from :func:`read_image_bytes`.
        min_pixels, max_pixels: allowed area in pixels (defaults: the Metis-RISE range from
            :mod:`data_prep.prompts`, 128·28·28 to 16384·28·28).
        field: the input field name, for the reject record.

    Returns:
        :class:`PreparedImage`; ``data is raw.data`` when no resize was needed. High-bit-depth greyscale
        (:data:`HIGH_BIT_DEPTH_MODES`) is always re-encoded as 8-bit PNG, scaled (not clipped) to 0..255.

    Raises:
        RowRejected: ``corrupt_image`` when PIL cannot identify or fully decode the bytes (a truncated JPEG fails
            here, because ``Image.load`` decodes every block, at 1/8 scale when the pixels are not needed);
            ``bad_image_shape`` for an aspect ratio over
            :data:`MAX_ASPECT_RATIO`.
        ValueError: ``min_pixels > max_pixels``.
    """
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels {min_pixels} > max_pixels {max_pixels}")
    try:
        image = Image.open(io.BytesIO(raw.data))
        width, height = image.size  # from the header
        new_w, new_h = target_size(width, height, min_pixels, max_pixels) if min(width, height) >= 1 else (0, 0)
        resize = (new_w, new_h) != (width, height)
        high_bit_depth = image.mode in HIGH_BIT_DEPTH_MODES
        keep = not resize and not high_bit_depth
        if keep:
            # The pixels are only checked, not kept: a JPEG is then decoded at 1/8 scale (draft mode). libjpeg still
            # entropy-decodes every block, so truncated or undecodable data fails exactly as in a full decode;
            # only the inverse DCT and colour conversion shrink (~3x faster). No-op for other formats.
            image.draft(None, (1, 1))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # PIL names the stream object ("<_io.BytesIO object at 0x7f...>"): an address would make rejects differ per run.
        message = _OBJECT_REPR.sub("the image bytes", str(exc))
        raise RowRejected(field, CORRUPT_IMAGE, f"{raw.path or '<bytes>'}: {type(exc).__name__}: {message}") from exc
    if min(width, height) < 1 or max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise RowRejected(field, BAD_IMAGE_SHAPE, f"{raw.path or '<bytes>'}: size {width}x{height}")
    if keep:
        return PreparedImage(raw.data, raw.path, width, height, resized=False)
    source_format = image.format
    if high_bit_depth:  # stored as 8-bit PNG even when in range: downstream readers would clip it
        image, source_format = _to_8_bit(image), "PNG"
    elif image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    if resize:
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    return PreparedImage(_encode(image, source_format), raw.path, new_w, new_h, resized=resize)
