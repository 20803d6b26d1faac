"""Image intake: read the raw bytes of an image value, decode once, check it, resize only when out of range.

Image values accepted by :func:`read_image_bytes` (the forms multimodal math sets use):

* ``{"bytes": b"...", "path": "..."}`` (Hugging Face ``datasets`` Image form; ``bytes`` may be None, then ``path``
  is read),
* ``bytes`` (raw encoded image),
* ``str`` / ``os.PathLike``: a file path (relative paths resolve against ``root``), or a base64 string / ``data:``
  URI when ``encoding`` says so.

The pixel range follows Qwen2.5-VL's ``smart_resize`` (qwen-vl-utils ``vision_process.py``): the processor maps
every image into ``[min_pixels, max_pixels]`` anyway, so storing images outside that range only wastes disk
(too big) or leaves the upscaling to every epoch (too small). Images inside the range are stored byte-for-byte.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from data_prep.errors import BAD_IMAGE_SHAPE, CORRUPT_IMAGE, MISSING_IMAGE, UNREADABLE_IMAGE, RowRejected
from data_prep.prompts import MAX_PIXELS, MIN_PIXELS

#: qwen-vl-utils ``MAX_RATIO``: ``smart_resize`` raises for a longer/shorter side ratio above this.
MAX_ASPECT_RATIO = 200


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


def _read_file(path: Path, field: str) -> bytes:
    if not path.exists():
        raise RowRejected(field, MISSING_IMAGE, f"no such file: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RowRejected(field, UNREADABLE_IMAGE, f"{path}: {exc}") from exc


def _decode_base64(text: str, field: str) -> bytes:
    if text.startswith("data:"):
        _, _, text = text.partition("base64,")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RowRejected(field, UNREADABLE_IMAGE, f"invalid base64: {exc}") from exc


def read_image_bytes(
    value: Any, *, root: str | os.PathLike | None = None, encoding: str = "auto", field: str = "image"
) -> RawImage:
    """Read one image value into its encoded bytes (no decoding yet).

    Args:
        value: a ``{"bytes", "path"}`` dict, raw ``bytes``, or a string (path, base64 or ``data:`` URI).
        root: directory that relative paths are resolved against (None: the current directory).
        encoding: how to read a string: ``"path"``, ``"base64"``, or ``"auto"`` (``data:`` URIs are base64,
            anything else is a path).
        field: the input field name, for the reject record.

    Returns:
        :class:`RawImage`.

    Raises:
        RowRejected: ``missing_image`` (None, empty, or a path that does not exist), ``unreadable_image`` (I/O error,
            invalid base64), ``bad_row`` is never raised here.
    """
    if encoding not in ("auto", "path", "base64"):
        raise ValueError(f"encoding must be auto, path or base64, got {encoding!r}")
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data:
            return RawImage(bytes(data), path)
        if path:
            return read_image_bytes(path, root=root, encoding="path", field=field)
        raise RowRejected(field, MISSING_IMAGE, "image dict has neither bytes nor path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not value:
            raise RowRejected(field, MISSING_IMAGE, "empty image bytes")
        return RawImage(bytes(value), None)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not text:
            raise RowRejected(field, MISSING_IMAGE, "empty image value")
        if encoding == "base64" or (encoding == "auto" and text.startswith("data:")):
            return RawImage(_decode_base64(text, field), None)
        path = Path(text)
        if root is not None and not path.is_absolute():
            path = Path(root) / path
        return RawImage(_read_file(path, field), text)
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
        :class:`PreparedImage`; ``data is raw.data`` when no resize was needed.

    Raises:
        RowRejected: ``corrupt_image`` when PIL cannot identify or fully decode the bytes (a truncated JPEG fails
            here, because ``Image.load`` decodes every scanline); ``bad_image_shape`` for an aspect ratio over
            :data:`MAX_ASPECT_RATIO`.
        ValueError: ``min_pixels > max_pixels``.
    """
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels {min_pixels} > max_pixels {max_pixels}")
    try:
        image = Image.open(io.BytesIO(raw.data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise RowRejected(field, CORRUPT_IMAGE, f"{raw.path or '<bytes>'}: {type(exc).__name__}: {exc}") from exc
    width, height = image.size
    if min(width, height) < 1 or max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise RowRejected(field, BAD_IMAGE_SHAPE, f"{raw.path or '<bytes>'}: size {width}x{height}")
    new_w, new_h = target_size(width, height, min_pixels, max_pixels)
    if (new_w, new_h) == (width, height):
        return PreparedImage(raw.data, raw.path, width, height, resized=False)
    source_format = image.format
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    resized = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    return PreparedImage(_encode(resized, source_format), raw.path, new_w, new_h, resized=True)
