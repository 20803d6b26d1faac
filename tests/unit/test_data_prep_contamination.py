"""Contamination check on real MATH-Vision rows: planted leaks are found, same-wording pairs are not flagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep import contamination, mathvision

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MV = SHARED / "data" / "mathvision"


def _lines(name: str) -> list[str]:
    return (MV / name).read_text(encoding="utf-8").splitlines()


def _find(name: str, image: str) -> dict:
    return next(json.loads(line) for line in _lines(name) if json.loads(line)["image"] == image)


def _convert(tmp_path: Path, name: str, lines: list[str], root: Path = MV) -> Path:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / f"{name}.parquet"
    assert mathvision.main(["-i", str(src), "--root", str(root), "-o", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Held-out: 40 testmini rows (incl. two that share wording with training rows). Training: 30 clean rows, the
    two same-wording-different-image rows, and planted leaks of held-out problems."""
    tmp = tmp_path_factory.mktemp("contam")
    (tmp / "images").mkdir()
    test_lines = _lines("testmini.jsonl")
    heldout_lines = test_lines[:40]
    same_wording_test = [_find("testmini.jsonl", "images/159.jpg"), _find("testmini.jsonl", "images/415.jpg")]
    heldout_lines += [json.dumps(r) for r in same_wording_test]
    heldout = _convert(tmp, "heldout", heldout_lines)

    leaks = {}
    # 1. an exact copy of a held-out problem (same image bytes, same text)
    exact = json.loads(test_lines[3])
    leaks["exact"] = dict(exact, id="leak-exact")
    # 2. the same picture re-encoded at half size, asked with a different question
    src = json.loads(test_lines[7])
    with Image.open(MV / src["image"]) as im:
        small = im.resize((im.width // 2, im.height // 2))
        small.save(tmp / "images" / "leak_phash.jpg", quality=70)
    leaks["phash"] = dict(src, image="images/leak_phash.jpg", question="Totally different words <image1>")
    # 3. near-identical question with a cropped (not identical) copy of the picture
    src = json.loads(test_lines[11])
    with Image.open(MV / src["image"]) as im:
        w, h = im.size
        im.crop((int(w * 0.02), int(h * 0.02), w - int(w * 0.02), h - int(h * 0.02))).save(
            tmp / "images" / "leak_crop.jpg", quality=90)
    leaks["crop"] = dict(src, image="images/leak_crop.jpg", question=src["question"] + " ")
    train_lines = _lines("train.jsonl")[:30]
    same_wording_train = [_find("train.jsonl", "images/680.jpg"), _find("train.jsonl", "images/721.jpg")]
    train_lines += [json.dumps(r) for r in same_wording_train]
    train_lines += [json.dumps(leaks[k]) for k in ("exact", "phash", "crop")]
    # The training set is its own dataset root (image paths may not leave it): the real pictures beside the leaks.
    for line in train_lines:
        image = json.loads(line)["image"]
        if not (tmp / image).exists():
            shutil.copy(MV / image, tmp / image)
    train = _convert(tmp, "train", train_lines, root=tmp)
    return tmp, train, heldout, same_wording_train, same_wording_test


def test_planted_leaks_are_flagged_and_dropped(planted):
    tmp, train, heldout, _, _ = planted
    report, clean = tmp / "report.jsonl", tmp / "clean.parquet"
    code = contamination.main(["--train", str(train), "--heldout", str(heldout), "--report", str(report),
                               "--drop", "--output", str(clean), "--no-progress", "--fail-if-contaminated"])
    assert code == 1
    flagged = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(f["row"], f["reason"]) for f in flagged] == [
        (32, "same_image_exact"), (33, "same_image_phash"), (34, "same_question_similar_image")]
    heldout_ids = pq.read_table(heldout, columns=["extra_info"]).column(0).to_pylist()
    assert [f["heldout_prompt_id"] for f in flagged] == [heldout_ids[k]["prompt_id"] for k in (3, 7, 11)]
    assert flagged[1]["distance"] <= 4 and 4 < flagged[2]["distance"] <= 12 and flagged[2]["question_similarity"] >= 0.9
    kept = pq.read_table(clean).to_pylist()
    assert len(kept) == 32
    assert {r["extra_info"]["prompt_id"] for r in kept}.isdisjoint({f["prompt_id"] for f in flagged})


def test_same_wording_with_a_different_picture_is_not_contamination(planted):
    _, train, heldout, same_train, same_test = planted
    for a, b in zip(same_train, same_test):
        assert contamination.question_similarity(a["question"], b["question"]) >= 0.9  # the wording really matches
    index = contamination.HeldOutIndex()
    index.add_file(heldout, progress=False)
    rows = pq.read_table(train).to_pylist()
    for r in rows[30:32]:
        assert index.match(r["extra_info"]["question"], [im["bytes"] for im in r["images"]]) is None


def test_real_train_and_testmini_do_not_collide(tmp_path):
    # The 400 training rows come from MATH-V's test split minus testmini: a correct check finds no leak.
    train = _convert(tmp_path, "train", _lines("train.jsonl"))
    test = _convert(tmp_path, "test", _lines("testmini.jsonl"))
    stats = contamination.check_contamination(train, [test], report=tmp_path / "r.jsonl", progress=False)
    assert (stats.checked, stats.flagged) == (400, 0)


def test_text_only_rows_match_on_normalised_question(tmp_path):
    from data_prep import text_only

    for name, problems in (("held", ["What is 2+2?", "Name a prime."]), ("tr", ["what  is\n2+2?", "What is 2+3?"])):
        src = tmp_path / f"{name}.jsonl"
        src.write_text("".join(json.dumps({"problem": q, "answer": "4"}) + "\n" for q in problems))
        assert text_only.main(["-i", str(src), "-o", str(tmp_path / f"{name}.parquet"), "--no-progress"]) == 0
    stats = contamination.check_contamination(tmp_path / "tr.parquet", [tmp_path / "held.parquet"],
                                              report=tmp_path / "r.jsonl", progress=False)
    assert (stats.checked, stats.flagged, dict(stats.by_reason)) == (2, 1, {"same_question_text_only": 1})
    assert json.loads((tmp_path / "r.jsonl").read_text())["row"] == 0
    assert contamination.normalize_question("What  is\n2+2? <image>") == "what is 2+2?"
