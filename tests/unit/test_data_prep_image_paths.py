"""Image paths are untrusted: only regular files under the dataset root, under a size cap; no hang, no OOM.

Also: a killed converter's temp files are cleaned by the next run of the same output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import jsonl
from data_prep.errors import RowRejected
from data_prep.images import DEFAULT_MAX_IMAGE_BYTES, read_image_bytes
from data_prep.writer import ParquetRowWriter
from data_prep.schema import ARROW_SCHEMA

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _no_hang(seconds: int = 20):
    """Fail (instead of hanging the test run) when the block blocks, e.g. on opening a FIFO."""

    def alarm(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _png_bytes(size: int = 320) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), "blue").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def tree(tmp_path):
    """root/ (the dataset) and outside/ (a sibling directory the dataset must not reach)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "images").mkdir(parents=True)
    outside.mkdir()
    data = _png_bytes()
    (root / "images" / "ok.png").write_bytes(data)
    (outside / "secret.png").write_bytes(data)
    (root / "images" / "link_out.png").symlink_to(outside / "secret.png")
    (root / "images" / "link_in.png").symlink_to(root / "images" / "ok.png")
    (root / "images" / "zero").symlink_to("/dev/zero")
    os.mkfifo(root / "images" / "fifo.png")
    return root, outside, data


def test_paths_under_the_root_are_read(tree):
    root, _, data = tree
    assert read_image_bytes("images/ok.png", root=root).data == data
    assert read_image_bytes("images/./link_in.png", root=root).data == data  # a symlink that stays inside
    assert read_image_bytes(str(root / "images" / "ok.png"), root=root).data == data  # absolute, but inside


@pytest.mark.parametrize(
    "value,reason",
    [
        ("../outside/secret.png", "bad_image_path"),
        ("images/../../outside/secret.png", "bad_image_path"),
        ("OUTSIDE_ABSOLUTE", "bad_image_path"),
        ("/dev/zero", "bad_image_path"),
        ("images/link_out.png", "bad_image_path"),
        ("images/zero", "bad_image_path"),
        ("images/fifo.png", "unreadable_image"),
        ("images", "unreadable_image"),
        ("images/none.png", "missing_image"),
        ({"bytes": None, "path": "../outside/secret.png"}, "bad_image_path"),
    ],
)
def test_paths_that_leave_the_root_or_are_not_regular_files_are_rejected(tree, value, reason):
    root, outside, _ = tree
    if value == "OUTSIDE_ABSOLUTE":
        value = str(outside / "secret.png")
    with _no_hang(), pytest.raises(RowRejected) as exc:
        read_image_bytes(value, root=root, field="img")
    assert (exc.value.field, exc.value.reason) == ("img", reason)
    assert exc.value.detail


def test_devices_are_not_read_even_under_the_root():
    with _no_hang(), pytest.raises(RowRejected) as exc:
        read_image_bytes("dev/zero", root="/")
    assert exc.value.reason == "unreadable_image" and "not a regular file" in exc.value.detail


def test_size_cap_applies_to_files_bytes_and_base64(tree):
    root, _, data = tree
    assert 0 < len(data) < DEFAULT_MAX_IMAGE_BYTES
    import base64

    for value in ("images/ok.png", data, {"bytes": data, "path": "x.png"}, "data:image/png;base64,"
                  + base64.b64encode(data).decode()):
        with pytest.raises(RowRejected) as exc:
            read_image_bytes(value, root=root, max_bytes=len(data) - 1)
        assert exc.value.reason == "image_too_large", value
        assert read_image_bytes(value, root=root, max_bytes=len(data)).data == data


def test_converter_finishes_and_rejects_every_unsafe_path(tree, tmp_path):
    root, outside, _ = tree
    images = ["images/ok.png", "images/fifo.png", "/dev/zero", "../outside/secret.png", "images/link_out.png",
              str(outside / "secret.png"), "images/big.png"]
    (root / "images" / "big.png").write_bytes(_png_bytes(900))
    src = root / "data.jsonl"
    src.write_text("".join(json.dumps({"question": f"Q{i}: what colour?", "answer": "blue", "image": im}) + "\n"
                           for i, im in enumerate(images)), encoding="utf-8")
    out = tmp_path / "out.parquet"
    with _no_hang(60):
        code = jsonl.main(["-i", str(src), "-o", str(out), "--no-progress", "--max-reject-fraction", "1",
                           "--max-image-bytes", str((root / "images" / "ok.png").stat().st_size)])
    assert code == 0
    rejects = [json.loads(line) for line in out.with_name("out.rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [
        (1, "image", "unreadable_image"),
        (2, "image", "bad_image_path"),
        (3, "image", "bad_image_path"),
        (4, "image", "bad_image_path"),
        (5, "image", "bad_image_path"),
        (6, "image", "image_too_large"),
    ]
    assert pq.read_table(out).num_rows == 1


_KILLED_CONVERTER = """
import sys, time
from pathlib import Path
from data_prep.pipeline import ConvertConfig, SourceRow, convert
from data_prep.schema import Problem

def rows():
    for i in range(10):
        if i == 5:
            Path(sys.argv[2]).write_text("started")
            time.sleep(120)
        yield SourceRow("mem", i, i)

convert(rows(), lambda i: Problem(question=f"What is {i} + 1?", answer=str(i + 1)),
        ConvertConfig(output=Path(sys.argv[1]), progress=False, row_group_size=2))
"""


def test_a_rerun_removes_the_temp_files_of_a_killed_converter(tmp_path):
    out, marker = tmp_path / "out.parquet", tmp_path / "started"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_CONVERTER, str(out), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "converter did not start"
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    stale = sorted(p.name for p in tmp_path.glob(".*.tmp"))
    assert len(stale) == 2  # the parquet's and the rejects file's
    src = tmp_path / "in.jsonl"
    src.write_text('{"question": "What is 1 + 1?", "answer": "2"}\n', encoding="utf-8")
    assert jsonl.main(["-i", str(src), "-o", str(out), "--no-progress", "--image-field", ""]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.parquet", "out.rejects.jsonl", "started"]


def test_the_temp_file_of_a_live_writer_is_left_alone(tmp_path):
    out = tmp_path / "out.parquet"
    unrelated = tmp_path / ".other.parquet.abcdefgh.tmp"
    unrelated.write_text("another output's temp file")
    live = ParquetRowWriter(out, ARROW_SCHEMA)
    try:
        second = ParquetRowWriter(out, ARROW_SCHEMA)  # e.g. a second converter started on the same output
        assert live._file.tmp.exists() and unrelated.exists()
        second.abort()
    finally:
        live.abort()
    assert [p.name for p in tmp_path.iterdir()] == [unrelated.name]
