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


@pytest.mark.parametrize("mode,fmt", [("I;16", "PNG"), ("I", "TIFF")])
def test_16_bit_greyscale_is_scaled_to_8_bits_not_clipped_to_white(mode, fmt):
    import numpy as np

    ramp = np.linspace(0, 65535, 320).round().astype(np.uint16)  # left black, right white, a 16-bit gradient
    grey16 = Image.fromarray(np.tile(ramp, (320, 1)))
    grey16 = grey16 if mode == "I;16" else grey16.convert("I")
    buf = io.BytesIO()
    grey16.save(buf, format=fmt)
    with Image.open(io.BytesIO(buf.getvalue())) as check:
        assert check.mode == mode  # really a 16-bit (32-bit int) greyscale file
    out = prepare_image(RawImage(buf.getvalue(), "ramp.png"))
    assert (out.width, out.height) == (320, 320)
    with Image.open(io.BytesIO(out.data)) as im:
        row = np.asarray(im.convert("RGB"))[160, :, 0].astype(int)  # what Qwen2.5-VL's processor will see
    expected = (ramp.astype(int) * 255 + 32767) // 65535
    assert np.abs(row - expected).max() <= 1
    assert row[0] == 0 and row[-1] == 255 and 120 <= row[160] <= 135


def test_16_bit_image_out_of_range_is_resized_in_8_bits():
    import numpy as np

    grey16 = Image.fromarray(np.full((100, 100), 32896, dtype=np.uint16))  # mid grey, too small: upscaled
    buf = io.BytesIO()
    grey16.save(buf, format="PNG")
    out = prepare_image(RawImage(buf.getvalue(), None))
    assert out.resized
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.mode == "L" and set(np.asarray(im).ravel().tolist()) == {128}


def test_the_fast_check_of_in_range_jpegs_fails_exactly_when_a_full_decode_fails():
    # In-range JPEGs are decoded at 1/8 scale (their pixels are not kept); damage must be caught all the same.
    import json
    import random
    from pathlib import Path

    mv = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mathvision"
    lines = (mv / "train.jsonl").read_text(encoding="utf-8").splitlines()[:25]
    rng = random.Random(0)
    outcomes = []
    for line in lines:
        data = (mv / json.loads(line)["image"]).read_bytes()
        for frac in (0.3, 0.9, 0.99):
            flipped = bytearray(data)
            for _ in range(5):
                flipped[rng.randrange(600, len(data) - 2)] = rng.randrange(256)
            for damaged in (data[: int(len(data) * frac)], bytes(flipped)):
                try:
                    with Image.open(io.BytesIO(damaged)) as im:
                        im.load()
                    full_decode_fails = False
                except Exception:
                    full_decode_fails = True
                try:
                    prepare_image(RawImage(damaged, None))
                    rejected = False
                except RowRejected as exc:
                    assert exc.reason == "corrupt_image"
                    rejected = True
                outcomes.append((full_decode_fails, rejected))
    assert all(full == ours for full, ours in outcomes)
    assert 30 <= sum(full for full, _ in outcomes) <= len(outcomes) - 10  # both kinds of case are present
