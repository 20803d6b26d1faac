"""The image pool: the same output, byte for byte, as the serial path, on real MATH-Vision rows with damage."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import mathvision
from data_prep.errors import RowRejected
from data_prep.image_pool import ImagePool
from data_prep.images import RawImage
from data_prep.mathvision import problem_from_record
from data_prep.pipeline import ConvertConfig, convert
from data_prep.records import iter_jsonl

MV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mathvision"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """60 real rows (some upscaled), a truncated image, a 16-bit PNG, and repeats of good and of rejected rows."""
    root = tmp_path_factory.mktemp("pool")
    (root / "images").mkdir()
    rows = [json.loads(line) for line in (MV / "train.jsonl").read_text(encoding="utf-8").splitlines()[:60]]
    for r in rows:
        shutil.copy(MV / r["image"], root / r["image"])
    data = (root / rows[7]["image"]).read_bytes()
    (root / rows[7]["image"]).write_bytes(data[: len(data) // 3])  # corrupt_image
    Image.fromarray(np.tile(np.linspace(0, 65535, 400).astype(np.uint16), (300, 1))).save(root / "images" / "g16.png")
    rows.append(dict(rows[0], id="g16", image="images/g16.png", question="How bright? <image1>"))
    lines = [json.dumps(r) for r in rows]
    lines += [lines[3], lines[7], lines[7], "{broken", lines[60], lines[20]]  # repeats of good and corrupt rows
    lines.insert(30, json.dumps(dict(rows[1], image="../outside.png")))
    (root / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _run(root: Path, out: Path, **kw) -> tuple:
    config = ConvertConfig(output=out, progress=False, row_group_size=8, **kw)
    stats = convert(iter_jsonl(root / "data.jsonl"), lambda r: problem_from_record(r, root), config)
    return stats, out.read_bytes(), config.rejects_path().read_text()


@pytest.mark.parametrize("workers,chunk_rows", [(2, 3), (1, 16)])
def test_pool_output_is_identical_to_the_serial_output(dataset, tmp_path, workers, chunk_rows):
    serial = _run(dataset, tmp_path / "serial.parquet")
    pooled = _run(dataset, tmp_path / "pooled.parquet", workers=workers, chunk_rows=chunk_rows)
    assert pooled[0] == serial[0]
    assert (serial[0].read, serial[0].written) == (68, 60) and serial[0].resized_images > 0
    assert pooled[1] == serial[1]  # the parquet bytes
    assert pooled[2] == serial[2]  # the rejects file
    reasons = [(r["row"], r["reason"]) for r in map(json.loads, serial[2].splitlines())]
    assert reasons == [(7, "corrupt_image"), (30, "bad_image_path"), (62, "duplicate_prompt"),
                       (63, "corrupt_image"), (64, "corrupt_image"), (65, "bad_row"),
                       (66, "duplicate_prompt"), (67, "duplicate_prompt")]
    table = pq.read_table(tmp_path / "pooled.parquet")
    g16 = table.column("images").to_pylist()[59][0]["bytes"]
    with Image.open(io.BytesIO(g16)) as im:
        assert im.mode == "L" and np.asarray(im)[0, -1] == 255


def test_command_line_defaults_to_the_pool_and_matches_serial(dataset, tmp_path):
    args = ["-i", str(dataset / "data.jsonl"), "-o", str(tmp_path / "a.parquet"), "--no-progress",
            "--max-reject-fraction", "1"]
    assert mathvision.main(args + ["--workers", "2"]) == 0
    assert mathvision.main(args[:3] + [str(tmp_path / "b.parquet")] + args[4:] + ["--workers", "0"]) == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_pool_hands_back_rejects_and_unchanged_bytes():
    good = io.BytesIO()
    Image.new("RGB", (400, 300), "red").save(good, format="PNG")
    raws = [[RawImage(good.getvalue(), "a.png")], [RawImage(b"not an image", "b.png")]]
    with ImagePool(1, min_pixels=1000, max_pixels=10**6, chunk_rows=4) as pool:
        handles = [pool.submit(r) for r in raws]
        first, second = (h.result() for h in handles)
    assert first[0].data is raws[0][0].data and (first[0].width, first[0].height) == (400, 300)
    assert isinstance(second, RowRejected) and second.reason == "corrupt_image" and "b.png" in second.detail


@pytest.mark.parametrize("reject_duplicates", [True, False])
def test_pool_matches_serial_on_interleaved_repeats_of_good_and_bad_rows(tmp_path, reject_duplicates):
    import random

    from data_prep.pipeline import SourceRow
    from data_prep.schema import Problem

    def png(k: int) -> bytes:
        buf = io.BytesIO()
        Image.new("L", (24 + k % 7, 24), k % 256).save(buf, format="PNG")
        return buf.getvalue()

    rng = random.Random(0)
    images = {k: (b"broken" + bytes([k]) if k % 4 == 0 else png(k)) for k in range(12)}  # every 4th corrupt
    keys = [rng.randrange(12) for _ in range(300)]  # dense repeats, near and far apart

    def rows():
        return (SourceRow("mem", i, k) for i, k in enumerate(keys))

    def to_problem(k: int) -> Problem:
        return Problem(question=f"<image> What is shade {k}?", answer=str(k), images=[RawImage(images[k], f"{k}.png")])

    outputs = []
    for name, workers in (("serial", 0), ("pool", 2)):
        config = ConvertConfig(output=tmp_path / f"{name}.parquet", progress=False, workers=workers, chunk_rows=2,
                               min_pixels=1, row_group_size=7, reject_duplicates=reject_duplicates)
        stats = convert(rows(), to_problem, config)
        outputs.append((stats, config.output.read_bytes(), config.rejects_path().read_text()))
    assert outputs[0] == outputs[1]
    stats = outputs[0][0]
    corrupt = keys.count(0) + keys.count(4) + keys.count(8)
    assert stats.by_reason["corrupt_image"] == corrupt
    assert stats.written == (9 if reject_duplicates else len(keys) - corrupt)
