"""Benchmark converters (data_prep.benchmarks): VLMEvalKit TSV and each release layout -> verl parquet.

Fixtures are built here in the releases' field names and value types (tiny generated PNGs; base64 in TSV cells,
shared-image references, list literals), never downloaded.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep.benchmarks.convert import main as convert_main
from data_prep.prompts import METIS_RISE_SYSTEM_PROMPT


def png(shade: int, size: tuple[int, int] = (330, 310)) -> bytes:  # inside the Metis-RISE pixel range: stored as is
    buf = io.BytesIO()
    Image.new("RGB", size, (shade, 255 - shade, (7 * shade) % 256)).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_tsv(path: Path, rows: list[dict]) -> Path:
    header = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")  # pandas to_csv's quoting: minimal
        w.writerow(header)
        for r in rows:
            w.writerow(["" if r.get(k) is None else r[k] for k in header])
    return path


# --- WeMath: one two-step problem (3 rows) and one three-step problem (4 rows), options "A. ..;B. ..".
WEMATH_CONCEPTS = ["Conversion Rates and Calculations Between Length Units", "Understanding Angles (Using a Protractor)"]


def wemath_native_records() -> list[dict]:
    recs = []
    qn = 0
    for pid, keys, concept in (("2steps_1", ["2steps_1", "2steps_2", "2steps_multi"], WEMATH_CONCEPTS[0]),
                               ("3steps_1", ["3steps_1", "3steps_2", "3steps_3", "3steps_multi"], WEMATH_CONCEPTS[1])):
        for k, key in enumerate(keys):
            qn += 1
            recs.append({
                "ID": pid, "split": "testmini", "knowledge concept": concept,
                "question": f"Step {key}: OA = ( ) m",
                "option": "A. 300, 400;B. 400, 300;C. 3000, 4000;D. 4000, 3000; E. No correct answer",
                "answer": "ABCD"[(qn + k) % 4], "image_path": f"{pid.split('_')[0]}/image/{qn}-1.png",
                "key": key, "question number": qn, "knowledge concept description": f"{concept}:\n1. rule",
            })
    return recs


def wemath_tsv_rows(recs: list[dict]) -> list[dict]:
    """The same problems as VLMEvalKit's WeMath.tsv rows (options split into A..E; row 2 shares row 1's image)."""
    rows = []
    for i, r in enumerate(recs, start=1):
        row = {"index": i, "image": b64(png(i)) if i != 2 else "1"}
        row.update({k: r[k] for k in ("ID", "split", "knowledge concept", "question", "option", "answer", "key",
                                      "question number", "knowledge concept description")})
        row.update({"A": "300, 400", "B": "400, 300", "C": "3000, 4000", "D": "4000, 3000", "E": "No correct answer"})
        rows.append(row)
    return rows


def write_wemath_native(root: Path) -> Path:
    recs = wemath_native_records()
    for i, r in enumerate(recs, start=1):
        p = root / r["image_path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(png(i if i != 2 else 1))
    (root / "testmini.json").write_text(json.dumps(recs, ensure_ascii=False, indent=1))
    return root / "testmini.json"


# --- DynaMath: seeds 1 (float), 2 (multiple choice) in two variants, one dataset.json per variant.
def dynamath_variant(v: int) -> dict:
    return {
        "1": {"question": "What is the period of this function? Answer with a floating-point number.",
              "answer": ["2.0944", "3.1416"][v - 1], "image": "image/image1.png", "answer_type": "float",
              "subject": "analytic geometry", "level": "high school"},
        "2": {"question": "Which graph is increasing? choice: (A) 1 (B) 2 (C) 3 (D) 4",
              "answer": ["B", "D"][v - 1], "image": "image/image2.png", "answer_type": "multiple choice",
              "subject": "graph theory", "level": "elementary school"},
    }


def write_dynamath_native(root: Path) -> list[Path]:
    paths = []
    for v in (1, 2):
        d = root / f"variant{v}"
        (d / "image").mkdir(parents=True)
        for q in (1, 2):
            (d / "image" / f"image{q}.png").write_bytes(png(10 * v + q))
        (d / "dataset.json").write_text(json.dumps(dynamath_variant(v)))
        paths.append(d / "dataset.json")
    return paths


def dynamath_tsv_rows() -> list[dict]:
    rows = []
    for v in (1, 2):
        for q, rec in dynamath_variant(v).items():
            rows.append({"index": (v - 1) * 501 + int(q), "image": b64(png(10 * v + int(q))),
                         "question": rec["question"], "answer": rec["answer"], "answer_type": rec["answer_type"],
                         "subject": rec["subject"], "knowledge_level": rec["level"], "qid": int(q), "varid": v})
    return rows


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def run_convert(*args: str) -> int:
    return convert_main([*args, "--no-progress"])


def test_wemath_tsv_prompt_answer_and_extra_info(tmp_path):
    tsv = write_tsv(tmp_path / "WeMath.tsv", wemath_tsv_rows(wemath_native_records()))
    assert run_convert("-b", "wemath", "--tsv", str(tsv), "-o", str(tmp_path / "w.parquet")) == 0
    rows = read_rows(tmp_path / "w.parquet")
    assert len(rows) == 7
    r = rows[0]
    assert r["data_source"] == "WeMath"
    assert r["prompt"][0] == {"role": "system", "content": METIS_RISE_SYSTEM_PROMPT}
    assert r["prompt"][1]["content"] == (
        "<image>\nQuestion: Step 2steps_1: OA = ( ) m\nOptions:\nA. 300, 400\nB. 400, 300\nC. 3000, 4000\n"
        "D. 4000, 3000\nE. No correct answer"
    )
    assert r["reward_model"]["ground_truth"] == "B"
    extra = r["extra_info"]
    assert extra["benchmark"] == "wemath" and extra["index"] == 1 and extra["answer_type"] == "choice"
    assert extra["options"] == ["300, 400", "400, 300", "3000, 4000", "4000, 3000", "No correct answer"]
    assert extra["vlmeval"]["knowledge concept"] == WEMATH_CONCEPTS[0]
    assert extra["vlmeval"]["question number"] == "1" and extra["vlmeval"]["key"] == "2steps_1"
    assert "image" not in extra["vlmeval"]
    # Row 2's image cell "1" refers to row 1's image: it gets the same bytes.
    assert rows[1]["images"][0]["bytes"] == rows[0]["images"][0]["bytes"] == png(1)


def test_wemath_native_matches_tsv(tmp_path):
    recs = wemath_native_records()
    write_tsv(tmp_path / "WeMath.tsv", wemath_tsv_rows(recs))
    native = write_wemath_native(tmp_path / "release")
    assert run_convert("-b", "wemath", "--tsv", str(tmp_path / "WeMath.tsv"), "-o", str(tmp_path / "t.parquet")) == 0
    assert run_convert("-b", "wemath", "--native", str(native), "-o", str(tmp_path / "n.parquet")) == 0
    tsv_rows, native_rows = read_rows(tmp_path / "t.parquet"), read_rows(tmp_path / "n.parquet")
    assert len(tsv_rows) == len(native_rows) == 7
    for t, n in zip(tsv_rows, native_rows):
        tv = {k: v for k, v in t["extra_info"]["vlmeval"].items()}
        nv = {k: v for k, v in n["extra_info"]["vlmeval"].items() if k in tv}
        assert nv == tv
        assert t["prompt"] == n["prompt"] and t["reward_model"] == n["reward_model"]
        assert t["extra_info"]["prompt_id"] == n["extra_info"]["prompt_id"]


def test_dynamath_native_and_tsv_agree_and_index_keys_variant_one(tmp_path):
    paths = write_dynamath_native(tmp_path)
    write_tsv(tmp_path / "DynaMath.tsv", dynamath_tsv_rows())
    assert run_convert("-b", "dynamath", "--native", *map(str, paths), "-o", str(tmp_path / "n.parquet")) == 0
    assert run_convert("-b", "dynamath", "--tsv", str(tmp_path / "DynaMath.tsv"), "-o", str(tmp_path / "t.parquet")) == 0
    native, tsv = read_rows(tmp_path / "n.parquet"), read_rows(tmp_path / "t.parquet")
    assert [r["extra_info"]["vlmeval"] for r in native] == [r["extra_info"]["vlmeval"] for r in tsv]
    idx = {(r["extra_info"]["vlmeval"]["qid"], r["extra_info"]["vlmeval"]["varid"]): r["extra_info"]["index"] for r in native}
    assert idx == {("1", "1"): 1, ("2", "1"): 2, ("1", "2"): 502, ("2", "2"): 503}
    assert native[1]["prompt"][1]["content"].startswith("<image>\n## Question\n Which graph is increasing?")
    assert [r["extra_info"]["answer_type"] for r in native] == ["free_form", "choice"] * 2
    assert native[3]["reward_model"]["ground_truth"] == "D"


def test_mathvista_native_and_tsv(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.jpg").write_bytes(png(1))
    (tmp_path / "images" / "2.jpg").write_bytes(png(2))
    meta = {"split": "testmini", "task": "figure question answering", "skills": ["arithmetic reasoning"]}
    testmini = {
        "1": {"question": "How much is the spring compressed?", "image": "images/1.jpg", "choices": None,
              "unit": None, "precision": 1, "answer": "1.2", "question_type": "free_form", "answer_type": "float",
              "pid": "1", "metadata": meta},
        "2": {"question": "What fraction is blue?", "image": "images/2.jpg", "choices": ["3/11", "8/11", "6/11"],
              "unit": None, "precision": None, "answer": "8/11", "question_type": "multi_choice",
              "answer_type": "text", "pid": "2", "metadata": meta},
    }
    query = {"1": "Hint: one decimal place.\nQuestion: How much is the spring compressed?",
             "2": "Hint: option letter.\nQuestion: What fraction is blue?\nChoices:\n(A) 3/11\n(B) 8/11\n(C) 6/11"}
    (tmp_path / "testmini.json").write_text(json.dumps(testmini))
    (tmp_path / "query.json").write_text(json.dumps(query))
    assert run_convert("-b", "mathvista", "--native", str(tmp_path / "testmini.json"), "-o", str(tmp_path / "n.parquet")) == 0
    rows = read_rows(tmp_path / "n.parquet")
    assert rows[0]["data_source"] == "MathVista_MINI"
    assert rows[0]["prompt"][1]["content"] == "<image>\n" + query["1"]
    assert rows[0]["extra_info"]["vlmeval"]["precision"] == "1.0"
    assert rows[1]["reward_model"]["ground_truth"] == "B"
    assert rows[1]["extra_info"]["vlmeval"]["answer_option"] == "B"
    assert rows[1]["extra_info"]["vlmeval"]["choices"] == "['3/11', '8/11', '6/11']"
    assert rows[1]["extra_info"]["options"] == ["3/11", "8/11", "6/11"]
    tsv_rows = [{"index": 1, "image": b64(png(1)), "question": query["1"], "answer": "1.2", "question_type": "free_form",
                 "answer_type": "float", "choices": None, "answer_option": None, "precision": "1.0", "unit": None,
                 "task": meta["task"], "skills": "['arithmetic reasoning']", "pid": 1},
                {"index": 2, "image": b64(png(2)), "question": query["2"], "answer": "8/11", "question_type": "multi_choice",
                 "answer_type": "text", "choices": "['3/11', '8/11', '6/11']", "answer_option": "B", "precision": None,
                 "unit": None, "task": meta["task"], "skills": "['arithmetic reasoning']", "pid": 2}]
    write_tsv(tmp_path / "MathVista_MINI.tsv", tsv_rows)
    assert run_convert("-b", "mathvista", "--tsv", str(tmp_path / "MathVista_MINI.tsv"), "-o", str(tmp_path / "t.parquet")) == 0
    tsv = read_rows(tmp_path / "t.parquet")
    assert [r["extra_info"]["vlmeval"] for r in tsv] == [r["extra_info"]["vlmeval"] for r in rows]
    assert [r["prompt"] for r in tsv] == [r["prompt"] for r in rows]


def test_mathverse_native_keeps_one_version_and_fills_question_for_eval(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "image_685.png").write_bytes(png(5))
    meta = {"split": "testmini", "source": "Geo3D", "subject": "Solid Geometry", "subfield": "Length"}
    recs = []
    for k, (version, question, query) in enumerate((
        ("Text Dominant", "A can has height 13 cm and radius 3 cm. Find L.\nChoices:\nA:14\nB:15", "Please answer.\nQuestion: A can ..."),
        ("Vision Only", "", "According to the question shown in the image, please directly answer the question."),
    )):
        recs.append({"sample_index": str(3421 + k * 4), "problem_index": "685", "problem_version": version,
                     "question": question, "image": "images/image_685.png", "answer": "A",
                     "question_type": "multi-choice", "metadata": meta, "query_wo": query, "query_cot": query + " CoT"})
    (tmp_path / "testmini.json").write_text(json.dumps(recs))
    assert run_convert("-b", "mathverse", "--native", str(tmp_path / "testmini.json"), "-o", str(tmp_path / "v.parquet")) == 0
    rows = read_rows(tmp_path / "v.parquet")
    assert len(rows) == 1
    v = rows[0]["extra_info"]["vlmeval"]
    assert rows[0]["data_source"] == "MathVerse_MINI_Vision_Only"
    assert v["index"] == "3425" and v["problem_version"] == "Vision Only"
    assert v["question_for_eval"] == recs[0]["question"]
    assert eval(v["metadata"]) == meta  # a Python dict literal, as VLMEvalKit's MathVerse_acc parses it
    assert rows[0]["prompt"][1]["content"] == "<image>\n" + recs[1]["query_wo"]


def test_logicvista_native_multi_letter_answers_and_rejects(tmp_path):
    (tmp_path / "images").mkdir()
    data = {}
    for k, answer in enumerate(["C", "B, D", "3"]):
        (tmp_path / "images" / f"v1_{k}.png").write_bytes(png(30 + k))
        data[f"v1_{k}"] = {"imagename": f"v1_{k}.png", "question": f"Which choice fits? ({k})", "answer": answer,
                           "reasoning": "pattern", "skill": ["inductive"], "broad_capability": ["diagram"],
                           "specific_capability": ["sequence pattern"], "imagesource": "x", "sourcelink": "y",
                           "liscenced": "false"}
    data["v1_3"] = dict(data["v1_0"], imagename="missing.png")
    (tmp_path / "dataset.json").write_text(json.dumps(data))
    out = tmp_path / "l.parquet"
    rc = run_convert("-b", "logicvista", "--native", str(tmp_path / "dataset.json"), "-o", str(out))
    assert rc == 1  # 2 of 4 rejected > 5%
    rows = read_rows(out)
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["C", "B, D"]
    assert rows[0]["extra_info"]["vlmeval"]["skill"] == "['inductive']"
    rejects = [json.loads(x) for x in (tmp_path / "l.rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["field"], r["reason"]) for r in rejects] == [
        (2, "answer", "answer_not_in_options"), (3, "imagename", "missing_image")]


def test_tsv_multi_image_bad_rows_and_duplicate_index(tmp_path):
    good = {"index": 1, "image": repr([b64(png(1)), b64(png(2))]), "question": "Compare <image> and <image>.",
            "answer": "A", "skill": "deductive"}
    rows = [
        good,
        dict(good, index=2, image="77"),              # refers to an index that does not exist
        dict(good, index=3, image=b64(b"not a png" * 10), question="Which <image>?"),  # corrupt bytes (over 64 chars: not a reference)
        dict(good, index=1, image=b64(png(3))),       # index repeated
        dict(good, index=5, answer=None, image=b64(png(4))),
        dict(good, index="x", image=b64(png(5))),
    ]
    tsv = write_tsv(tmp_path / "LogicVista.tsv", rows)
    with open(tsv, "a", encoding="utf-8") as f:
        f.write("6\tonly two cells\n")
    out = tmp_path / "lv.parquet"
    assert run_convert("-b", "logicvista", "--tsv", str(tsv), "-o", str(out), "--max-reject-fraction", "1") == 0
    written = read_rows(out)
    assert len(written) == 1
    assert written[0]["prompt"][1]["content"] == "Compare <image> and <image>."
    assert [im["bytes"] for im in written[0]["images"]] == [png(1), png(2)]
    rejects = [json.loads(x) for x in (tmp_path / "lv.rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["reason"]) for r in rejects] == [
        (1, "missing_image"), (2, "corrupt_image"), (3, "bad_row"), (4, "empty_answer"), (5, "bad_row"), (6, "bad_row")]
    assert "repeats data row" in rejects[2]["detail"]


def test_mathvision_native_reuses_training_reader(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.jpg").write_bytes(png(9))
    rec = {"id": "1", "question": "Which shape is missing? <image1>", "options": ["A", "B", "C", "D", "E"],
           "image": "images/1.jpg", "answer": "C", "solution": None, "level": 2, "subject": "logic"}
    (tmp_path / "test.jsonl").write_text(json.dumps(rec) + "\n")
    assert run_convert("-b", "mathvision", "--native", str(tmp_path / "test.jsonl"), "-o", str(tmp_path / "m.parquet")) == 0
    (row,) = read_rows(tmp_path / "m.parquet")
    assert row["data_source"] == "MathVision"
    assert row["prompt"][1]["content"].startswith("Which shape is missing? <image>\n\nOptions: A, B, C, D, E")
    v = row["extra_info"]["vlmeval"]
    assert (v["index"], v["answer"], v["category"], v["level"]) == ("1", "C", "logic", "2")
    assert v["choices"] == "['A', 'B', 'C', 'D', 'E']"


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("A. 300, 400;B. 400, 300; E. No correct answer", ["300, 400", "400, 300; E. No correct answer"]),
        ("A. 45° B. 60° ;C. 120°; D. No correct answer", ["45°", "60°", "120°", "No correct answer"]),
        # a letter inside an option's text (";C.;", ";C.  ;") is no label
        ("A. to get Shape ;C.; B. then Shape ;C.; C. last; D. No correct answer",
         ["to get Shape ;C.", "then Shape ;C.", "last", "No correct answer"]),
        ("A. north to ;C.  ;B. west to ;C.  ;C. south;D. None", ["north to ;C.", "west to ;C.", "south", "None"]),
    ],
)
def test_wemath_option_strings_as_released(option, expected):
    from data_prep.benchmarks.native import split_options

    assert split_options(option) == expected


def test_wemath_option_string_without_a_label_is_rejected(tmp_path):
    recs = wemath_native_records()
    recs[0]["option"] = "45°; 60°"
    root = tmp_path / "release"
    write_wemath_native(root)
    (root / "testmini.json").write_text(json.dumps(recs))
    out = tmp_path / "w.parquet"
    assert run_convert("-b", "wemath", "--native", str(root / "testmini.json"), "-o", str(out), "--max-reject-fraction", "1") == 0
    (reject,) = [json.loads(x) for x in (tmp_path / "w.rejects.jsonl").read_text().splitlines()]
    assert (reject["row"], reject["field"], reject["reason"]) == (0, "option", "bad_row")
    assert len(read_rows(out)) == 6


def test_tsv_written_by_pandas_keeps_cells_as_text(tmp_path):
    import pandas as pd

    question = 'Hint: "two lines"\n\tQuestion: What is x?'
    frame = pd.DataFrame([{"index": 1, "image": b64(png(1)), "question": question, "answer": "2",
                           "question_type": "free_form", "answer_type": "float", "precision": 1.0, "unit": None}])
    frame.to_csv(tmp_path / "MathVista_MINI.tsv", sep="\t", index=False)  # quotes the cell with a newline and tab
    out = tmp_path / "m.parquet"
    assert run_convert("-b", "mathvista", "--tsv", str(tmp_path / "MathVista_MINI.tsv"), "-o", str(out)) == 0
    (row,) = read_rows(out)
    v = row["extra_info"]["vlmeval"]
    assert v["question"] == question and v["precision"] == "1.0" and v["unit"] is None and v["index"] == "1"
    assert row["prompt"][1]["content"] == "<image>\n" + question.strip()


def test_benchmark_rows_with_the_same_content_are_all_kept(tmp_path):
    # Training files drop a repeated problem; a benchmark scores every index, so both rows stay (same prompt id).
    row = {"index": 1, "image": b64(png(1)), "question": "Which choice fits?", "answer": "A", "skill": "inductive"}
    tsv = write_tsv(tmp_path / "LogicVista.tsv", [row, dict(row, index=2)])
    out = tmp_path / "l.parquet"
    assert run_convert("-b", "logicvista", "--tsv", str(tsv), "-o", str(out)) == 0
    rows = read_rows(out)
    assert [r["extra_info"]["index"] for r in rows] == [1, 2]
    assert rows[0]["extra_info"]["prompt_id"] == rows[1]["extra_info"]["prompt_id"]
