"""Image intake: reading the accepted value forms, decode checks, resize only outside the pixel range."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from data_prep.errors import RowRejected
from data_prep.images import RawImage, prepare_image, read_image_bytes, target_size
from data_prep.prompts import MAX_PIXELS, MIN_PIXELS


def _png(w: int, h: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), "red" if mode != "L" else 128).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((w, h), 50).convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize(
    "size",
    [(10, 10), (100, 50), (3000, 3000), (5000, 4000), (28, 5000), (4000, 30), (317, 317)],
)
def test_target_size_lands_in_range_and_keeps_aspect(size):
    w, h = size
    nw, nh = target_size(w, h, MIN_PIXELS, MAX_PIXELS)
    assert MIN_PIXELS <= nw * nh <= MAX_PIXELS
    assert abs(nw / nh - w / h) / (w / h) < 0.05


def test_in_range_image_is_stored_byte_for_byte():
    data = _jpeg(400, 300)  # 120,000 px, inside [100,352, 12,845,056]
    out = prepare_image(RawImage(data, "a.jpg"))
    assert out.data is data and not out.resized and (out.width, out.height) == (400, 300)
    assert out.as_row_value() == {"bytes": data, "path": "a.jpg"}


def test_small_image_is_upscaled_and_keeps_its_format():
    out = prepare_image(RawImage(_jpeg(96, 95), None))
    assert out.resized and MIN_PIXELS <= out.width * out.height
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.format == "JPEG" and im.size == (out.width, out.height)


def test_large_image_is_downscaled_with_custom_range():
    out = prepare_image(RawImage(_png(1000, 800), None), min_pixels=1000, max_pixels=200_000)
    assert out.resized and out.width * out.height <= 200_000
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.format == "PNG" and im.size == (out.width, out.height)


def test_truncated_and_garbage_bytes_are_corrupt():
    data = _jpeg(400, 300)
    for bad in (data[: len(data) // 2], b"not an image at all"):
        with pytest.raises(RowRejected) as exc:
            prepare_image(RawImage(bad, "x.jpg"))
        assert exc.value.reason == "corrupt_image" and exc.value.field == "image"


def test_extreme_aspect_ratio_is_rejected():
    with pytest.raises(RowRejected) as exc:
        prepare_image(RawImage(_png(4020, 20), None))
    assert exc.value.reason == "bad_image_shape"


def test_read_image_bytes_accepts_every_documented_form(tmp_path):
    data = _png(320, 320)
    (tmp_path / "img.png").write_bytes(data)
    b64 = base64.b64encode(data).decode()
    assert read_image_bytes({"bytes": data, "path": "img.png"}).data == data
    assert read_image_bytes({"bytes": None, "path": "img.png"}, root=tmp_path).data == data
    assert read_image_bytes(data).data == data
    assert read_image_bytes("img.png", root=tmp_path) == RawImage(data, "img.png")
    assert read_image_bytes(str(tmp_path / "img.png")).data == data
    assert read_image_bytes("data:image/png;base64," + b64).data == data
    assert read_image_bytes(b64, encoding="base64").data == data


@pytest.mark.parametrize(
    "value,encoding,reason",
    [
        ("nope.png", "path", "missing_image"),
        (None, "auto", "missing_image"),
        ({"bytes": None, "path": None}, "auto", "missing_image"),
        ("%%%not base64%%%", "base64", "unreadable_image"),
        (12345, "auto", "unreadable_image"),
    ],
)
def test_read_image_bytes_rejects_bad_values(tmp_path, value, encoding, reason):
    with pytest.raises(RowRejected) as exc:
        read_image_bytes(value, root=tmp_path, encoding=encoding, field="img")
    assert exc.value.reason == reason and exc.value.field == "img"
