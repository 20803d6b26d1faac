"""Bad bytes and bad values: non-UTF-8 lines and garbage answers/options become rejects, never rows or tracebacks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_prep import jsonl, mathvision, text_only
from data_prep.records import iter_jsonl

MV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mathvision"


def _rejects(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.with_name(out.stem + ".rejects.jsonl").read_text().splitlines()]


def test_non_utf8_lines_are_rejected_rows_with_their_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"problem": "What is 1 + 1?", "answer": "2"}\n'
        b'{"problem": "Caf\xe9 costs 3, tea 4: the sum?", "answer": "7"}\n'  # Latin-1, not UTF-8
        b"\xff\xfe\x00{\n"
        b'{"problem": "What is 2 + 2?", "answer": "4"}\n'
    )
    out = tmp_path / "out.parquet"
    code = text_only.main(["-i", str(src), "-o", str(out), "--no-progress", "--max-reject-fraction", "0.5"])
    assert code == 0
    rejects = _rejects(out)
    assert [(r["file"], r["row"], r["field"], r["reason"]) for r in rejects] == [
        (str(src), 1, "row", "bad_row"),
        (str(src), 2, "row", "bad_row"),
    ]
    assert "line 2" in rejects[0]["detail"] and "UTF-8" in rejects[0]["detail"]
    assert "line 3" in rejects[1]["detail"]
    assert pq.read_table(out).column("reward_model").to_pylist() == [
        {"style": "rule", "ground_truth": "2"},
        {"style": "rule", "ground_truth": "4"},
    ]
    assert "read 4 = written 2 + rejected 2" in capsys.readouterr().out


def test_jsonl_reader_keeps_line_numbers_and_accepts_a_utf8_bom(tmp_path):
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\n{"a": "\xc3\xa9"}\n\xc3\n')
    rows = list(iter_jsonl(src))
    assert [r.row for r in rows] == [0, 2, 3]
    assert rows[0].record == {"a": 1} and rows[1].record == {"a": "é"}
    assert isinstance(rows[2].record, ValueError) and "line 4" in str(rows[2].record)


GARBAGE_ANSWERS = [["6"], {"value": 6}, True, math.nan, math.inf, -math.inf]


def test_garbage_answers_are_bad_rows_naming_the_field(tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"q": f"Problem {i}: what is 2 * 3?", "sol": a}) for i, a in enumerate(GARBAGE_ANSWERS)]
    lines.append('{"q": "Problem 1e400: what is 2 * 3?", "sol": 1e400}')  # parses to inf
    lines.append(json.dumps({"q": "A good one: what is 2 * 3?", "sol": 6}))
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    text_only.main(["-i", str(src), "-o", str(out), "--no-progress", "--question-field", "q", "--answer-field", "sol"])
    rejects = _rejects(out)
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [(i, "sol", "bad_row") for i in range(7)]
    details = [r["detail"] for r in rejects]
    for word, detail in zip(["list", "dict", "bool", "nan", "inf", "inf", "inf"], details):
        assert word in detail.lower()
    assert pq.read_table(out).column("extra_info").to_pylist()[0]["answer"] == "6"


def test_numeric_answers_and_options_are_written_without_exponents(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [
        {"question": "Tiny?", "answer": 1e-7},
        {"question": "Huge?", "answer": 1e20},
        {"question": "Half?", "answer": 2.5},
        {"question": "Pick the small one.", "answer": "A", "options": [1e-7, 3]},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.parquet"
    assert jsonl.main(["-i", str(src), "-o", str(out), "--no-progress", "--image-field", ""]) == 0
    info = pq.read_table(out).column("extra_info").to_pylist()
    assert [i["answer"] for i in info] == ["0.0000001", "100000000000000000000", "2.5", "A"]
    assert info[3]["options"] == ["0.0000001", "3"]


@pytest.mark.parametrize(
    "options,word,position",
    [
        ([None, "7"], "null", 1),
        (["7", ["6"]], "list", 2),
        ([{"text": "6"}, "7"], "dict", 1),
        (["7", True], "bool", 2),
        (["6", math.nan], "nan", 2),
        (["6", "  "], "empty", 2),
    ],
)
def test_garbage_options_are_bad_rows_naming_the_field(tmp_path, options, word, position):
    src = tmp_path / "in.jsonl"
    rows = [{"question": "Which is 2 * 3?", "choices": options, "answer": "A"}, {"question": "Fine?", "answer": "1"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.parquet"
    jsonl.main(["-i", str(src), "-o", str(out), "--no-progress", "--image-field", "", "--options-field", "choices"])
    (rej,) = _rejects(out)
    assert (rej["row"], rej["field"], rej["reason"]) == (0, "choices", "bad_row")
    assert word in rej["detail"].lower() and f"option {position}" in rej["detail"]
    assert pq.read_table(out).num_rows == 1


def test_mathvision_rejects_garbage_answers_and_options(tmp_path):
    real = json.loads((MV / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    rows = [
        dict(real, answer=[60]),
        dict(real, answer=False),
        dict(real, options=["A", None, "C"], answer="A"),
        dict(real, options=[["A"], "B"], answer="A"),
        dict(real, answer=60.0),  # a number is fine: written as "60.0"
    ]
    src = tmp_path / "mv.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "mv.parquet"
    mathvision.main(["-i", str(src), "--root", str(MV), "-o", str(out), "--no-progress"])
    assert [(r["row"], r["field"], r["reason"]) for r in _rejects(out)] == [
        (0, "answer", "bad_row"),
        (1, "answer", "bad_row"),
        (2, "options", "bad_row"),
        (3, "options", "bad_row"),
    ]
    assert pq.read_table(out).column("reward_model").to_pylist() == [{"style": "rule", "ground_truth": "60.0"}]
