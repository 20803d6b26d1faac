"""HF-datasets parquet, generic JSONL and text-only converters on small inputs built in a temp dir."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import hf_parquet, jsonl, text_only
from data_prep.schema import IMAGE_PLACEHOLDER
from data_prep.prompts import METIS_RISE_SYSTEM_PROMPT

REPO = Path(__file__).resolve().parents[2]


def _img(colour: str, size=(340, 330)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _rejects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_geometry3k_layout_with_image_lists_and_single_dicts(tmp_path):
    (tmp_path / "side.png").write_bytes(_img("green"))
    records = [
        {"images": [{"bytes": _img("red"), "path": "0.png"}], "problem": "<image>Find x.", "answer": "3"},
        {"images": [{"bytes": _img("blue"), "path": "1.png"}, {"bytes": _img("white"), "path": "2.png"}],
         "problem": "Compare <image> with <image>. Find y.", "answer": "\\frac{1}{2}"},
        {"images": [{"bytes": None, "path": "side.png"}], "problem": "Find z.", "answer": "7"},  # path-only dict
        {"images": [{"bytes": _img("gray"), "path": "3.png"}], "problem": "<image> <image> two?", "answer": "1"},
        {"images": [], "problem": "<image>Find w.", "answer": "2"},
    ]
    src = tmp_path / "geo.parquet"
    pq.write_table(pa.Table.from_pylist(records), src)
    out = tmp_path / "out.parquet"
    code = hf_parquet.main(["-i", str(src), "-o", str(out), "--data-source", "hiyouga/geometry3k", "--no-progress",
                            "--max-reject-fraction", "0.5"])
    assert code == 0
    rows = _rows(out)
    assert len(rows) == 3
    assert [len(r["images"]) for r in rows] == [1, 2, 1]
    assert rows[1]["images"][1]["bytes"] == _img("white")
    assert rows[2]["prompt"][1]["content"] == IMAGE_PLACEHOLDER + "\nFind z."
    assert rows[1]["reward_model"]["ground_truth"] == "\\frac{1}{2}"
    assert all(r["data_source"] == "hiyouga/geometry3k" for r in rows)
    assert {(r["row"], r["reason"]) for r in _rejects(tmp_path / "out.rejects.jsonl")} == {
        (3, "placeholder_mismatch"), (4, "missing_image")}
    # HF datasets reads the output as plain columns (what RLHFDataset does first).
    ds = datasets.load_dataset("parquet", data_files=str(out), cache_dir=str(tmp_path / "hf"))["train"]
    assert ds[1]["images"][0]["bytes"] == _img("blue") and ds[0]["extra_info"]["answer_type"] == "free_form"


def test_hf_parquet_names_a_missing_column(tmp_path):
    src = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": "1", "images": []}]), src)
    with pytest.raises(KeyError, match="problem"):
        hf_parquet.main(["-i", str(src), "-o", str(tmp_path / "o.parquet"), "--no-progress"])
    assert not (tmp_path / "o.parquet").exists()


def test_generic_jsonl_with_field_mapping_paths_and_base64(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(_img("red"))
    b64 = base64.b64encode(_img("blue")).decode()
    records = [
        {"q": "Which is bigger?", "choices": ["3", "5"], "gt": "B", "pic": "imgs/a.png"},
        {"q": "Value?", "choices": [], "gt": 12, "pic": "data:image/png;base64," + b64},
        {"q": "Pick the 5.", "choices": ["3", "5"], "gt": "5", "pic": "imgs/a.png"},  # option text answer
        {"q": "Missing pic", "choices": [], "gt": "1", "pic": "imgs/none.png"},
        {"q": "No answer", "choices": [], "pic": "imgs/a.png"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out.parquet"
    args = ["-i", str(src), "-o", str(out), "--question-field", "q", "--answer-field", "gt",
            "--options-field", "choices", "--image-field", "pic", "--no-progress"]
    assert jsonl.main(args + ["--allow-option-text"]) == 1  # 2 of 5 rejected > 5%
    rows = _rows(out)
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["B", "12", "B"]
    assert rows[0]["prompt"][1]["content"].endswith("Options:\nA. 3\nB. 5\nAnswer with the letter of the correct option.")
    assert rows[1]["images"][0]["bytes"] == _img("blue")
    assert {(r["row"], r["field"], r["reason"]) for r in _rejects(tmp_path / "out.rejects.jsonl")} == {
        (3, "pic", "missing_image"), (4, "gt", "bad_row")}
    # Without --allow-option-text the option-text answer is a reject.
    assert jsonl.main(args + ["--max-reject-fraction", "1"]) == 0
    assert ("answer_not_in_options" in {r["reason"] for r in _rejects(tmp_path / "out.rejects.jsonl")})


def test_text_only_with_boxed_answers(tmp_path):
    records = [
        {"problem": "What is $1+1$?", "solution": "Clearly $1+1=\\boxed{2}$."},
        {"problem": "Half of one?", "solution": "It is \\boxed{\\frac{1}{2}}."},
        {"problem": "No box", "solution": "It is 3."},
        {"problem": "Look at <image>", "solution": "\\boxed{4}"},
    ]
    src = tmp_path / "math.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "math.parquet"
    code = text_only.main(["-i", str(src), "-o", str(out), "--answer-field", "solution", "--answer-from-boxed",
                           "--no-progress", "--max-reject-fraction", "0.5", "--system-prompt", "Be brief."])
    assert code == 0
    rows = _rows(out)
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["2", "\\frac{1}{2}"]
    assert all(r["images"] == [] and r["prompt"][0]["content"] == "Be brief." for r in rows)
    assert [r["reason"] for r in _rejects(tmp_path / "math.rejects.jsonl")] == ["empty_answer", "placeholder_mismatch"]


@pytest.mark.parametrize("module", ["mathvision", "hf_parquet", "jsonl", "text_only", "generator", "contamination"])
def test_every_script_has_help(module):
    res = subprocess.run([sys.executable, "-m", f"data_prep.{module}", "--help"], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert res.returncode == 0 and "usage: python -m data_prep." + module in res.stdout


def test_default_system_prompt_is_metis_rise(tmp_path):
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps({"problem": "2+2?", "answer": "4"}) + "\n")
    out = tmp_path / "m.parquet"
    assert text_only.main(["-i", str(src), "-o", str(out), "--no-progress"]) == 0
    assert _rows(out)[0]["prompt"][0]["content"] == METIS_RISE_SYSTEM_PROMPT
    assert text_only.main(["-i", str(src), "-o", str(out), "--no-progress", "--no-system-prompt"]) == 0
    assert [m["role"] for m in _rows(out)[0]["prompt"]] == ["user"]
