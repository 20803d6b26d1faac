"""Bad input: corrupted copies of real MATH-Vision rows land in the rejects file with the right reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_prep import mathvision
from data_prep.pipeline import ConvertConfig, SourceRow, convert
from data_prep.schema import Problem

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MV = SHARED / "data" / "mathvision"


def _raw_rows(n: int) -> list[dict]:
    lines = (MV / "train.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line) for line in lines]


@pytest.fixture
def corrupted(tmp_path):
    """A dataset copy in tmp_path: 12 good rows, then one row per kind of damage."""
    root = tmp_path / "mv"
    (root / "images").mkdir(parents=True)
    rows = _raw_rows(16)
    for r in rows:
        shutil.copy(MV / r["image"], root / r["image"])
    good, bad = rows[:12], rows[12:]
    # 1. truncated JPEG: keep the first third of the bytes
    data = (root / bad[0]["image"]).read_bytes()
    (root / bad[0]["image"]).write_bytes(data[: len(data) // 3])
    # 2. missing file
    (root / bad[1]["image"]).unlink()
    # 3. empty answer
    bad[2] = dict(bad[2], answer="")
    # 4. answer that is not a letter of the options (choice row)
    choice = next(r for r in good if r["options"])
    bad[3] = dict(choice, id="x", answer="F", question=choice["question"] + " (variant)")
    lines = [json.dumps(r) for r in good + bad]
    lines.append(json.dumps(good[5]))  # 5. duplicated row
    lines.append("{not json")  # 6. unparsable line
    lines.append(json.dumps(dict(good[0], image=[good[0]["image"]] * 2, question="<image1> and <image3>")))  # 7.
    (root / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {
        12: ("image", "corrupt_image"),
        13: ("image", "missing_image"),
        14: ("answer", "empty_answer"),
        15: ("answer", "answer_not_in_options"),
        16: ("prompt_id", "duplicate_prompt"),
        17: ("row", "bad_row"),
        18: ("question", "placeholder_mismatch"),
    }
    return root, expected


def test_each_damage_is_rejected_with_file_row_field_and_reason(corrupted, tmp_path, capsys):
    root, expected = corrupted
    out = tmp_path / "out.parquet"
    code = mathvision.main(["-i", str(root / "data.jsonl"), "-o", str(out), "--no-progress",
                            "--max-reject-fraction", "0.5"])
    assert code == 0
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert {r["row"]: (r["field"], r["reason"]) for r in rejects} == expected
    assert all(r["file"] == str(root / "data.jsonl") and r["detail"] for r in rejects)
    dup = next(r for r in rejects if r["reason"] == "duplicate_prompt")
    assert "row 5" in dup["detail"]
    written = pq.read_table(out).num_rows
    assert written == 12
    assert written + len(rejects) == 19  # read = written + rejected
    assert "read 19 = written 12 + rejected 7" in capsys.readouterr().out


def test_exit_status_follows_the_reject_threshold(corrupted, tmp_path):
    root, _ = corrupted
    args = ["-i", str(root / "data.jsonl"), "-o", str(tmp_path / "o.parquet"), "--no-progress"]
    assert mathvision.main(args) == 1  # default threshold 5% < 7/19
    assert mathvision.main(args + ["--max-reject-fraction", "0.37"]) == 0
    assert mathvision.main(args + ["--max-reject-fraction", "0.36"]) == 1
    # The files are still written on a threshold failure, so the rejects can be read.
    assert (tmp_path / "o.rejects.jsonl").read_text().count("\n") == 7


def test_a_crash_leaves_no_partial_output(tmp_path):
    out = tmp_path / "crash.parquet"

    def to_problem(record):
        if record == 3:
            raise RuntimeError("converter bug")
        return Problem(question=f"What is {record} + 1?", answer=str(record + 1))

    rows = (SourceRow("mem", i, i) for i in range(10))
    with pytest.raises(RuntimeError):
        convert(rows, to_problem, ConvertConfig(output=out, progress=False, row_group_size=2))
    assert list(tmp_path.iterdir()) == []  # neither the output, the rejects file, nor a temp file


def test_output_is_streamed_in_row_groups(tmp_path):
    out = tmp_path / "text.parquet"
    rows = (SourceRow("mem", i, i) for i in range(10))
    stats = convert(rows, lambda i: Problem(question=f"What is {i} + 1?", answer=str(i + 1)),
                    ConvertConfig(output=out, progress=False, row_group_size=4))
    assert (stats.read, stats.written, stats.rejected) == (10, 10, 0)
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == 3 and meta.num_rows == 10
