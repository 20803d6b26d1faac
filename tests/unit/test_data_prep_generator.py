"""The built-in problem generator: determinism, answers checked against the pixels, the written parquet."""

from __future__ import annotations

import io
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from scipy import ndimage

from data_prep import generator
from data_prep.generator import COLOURS, LETTERS, generate_problem, iter_problems
from data_prep.prompts import MIN_PIXELS

N = 120  # problems per check: every task shows up many times, still well under a second to draw


def _pixels(p) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(p.image)).convert("RGB")).astype(int)


def _value(p) -> int:
    """The integer answer, reading the option behind the letter for choice problems."""
    if p.options:
        assert len(p.options) == 4 and len(set(p.options)) == 4
        return int(p.options[LETTERS.index(p.answer)])
    return int(p.answer)


def _problems(task: str, seed: int = 3) -> list:
    return [p for _, p in iter_problems(N, seed, tasks=(task,))]


def test_same_seed_same_bytes_different_seed_different_bytes():
    a = [generate_problem(7, i) for i in range(20)]
    b = [generate_problem(7, i) for i in range(20)]
    c = [generate_problem(8, i) for i in range(20)]
    assert [(p.question, p.options, p.answer, p.image) for p in a] == [(p.question, p.options, p.answer, p.image) for p in b]
    assert sum(p.image == q.image for p, q in zip(a, c)) < 3


def test_cli_is_deterministic_and_writes_exactly_num_rows(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.parquet"
        assert generator.main(["--num", "40", "--seed", "5", "-o", str(out), "--no-progress"]) == 0
        outs.append(pq.read_table(out).to_pylist())
    assert len(outs[0]) == 40
    assert [r["extra_info"]["prompt_id"] for r in outs[0]] == [r["extra_info"]["prompt_id"] for r in outs[1]]
    assert [r["images"][0]["bytes"] for r in outs[0]] == [r["images"][0]["bytes"] for r in outs[1]]
    assert (tmp_path / "a.rejects.jsonl").read_text() == ""
    kinds = {r["extra_info"]["answer_type"] for r in outs[0]}
    assert kinds == {"choice", "free_form"}
    for r in outs[0]:
        with Image.open(io.BytesIO(r["images"][0]["bytes"])) as im:
            assert im.width * im.height >= MIN_PIXELS  # the default 336 px canvas needs no resize


def test_every_task_and_both_variants_occur():
    seen = {(p.task, bool(p.options)) for p in (generate_problem(0, i) for i in range(200))}
    assert seen == {(t, c) for t in generator.TASKS for c in (True, False)}


def test_answers_are_integers_or_letters():
    for i in range(200):
        p = generate_problem(1, i)
        if p.options:
            assert p.answer in "ABCD" and all(o.lstrip("-").isdigit() for o in p.options)
        else:
            assert p.answer.isdigit()


def test_count_answers_match_connected_components_in_the_picture():
    for p in _problems("count"):
        px = _pixels(p)
        colour = p.meta["colour"]
        mask = (np.abs(px - np.array(COLOURS[colour])).sum(-1) == 0)
        _, n_blobs = ndimage.label(mask)
        assert n_blobs == sum(s["colour"] == colour for s in p.meta["shapes"])
        if p.meta["kind"] is None:
            assert _value(p) == n_blobs
        else:
            assert _value(p) == sum(s["colour"] == colour and s["kind"] == p.meta["kind"] for s in p.meta["shapes"])
            assert f"{colour} {p.meta['kind']}s" in p.question


def test_bar_answers_match_bar_heights_measured_in_pixels():
    ops = {"sum": lambda v, i, j: v[i] + v[j], "difference": lambda v, i, j: abs(v[i] - v[j]),
           "total": lambda v, i, j: sum(v), "range": lambda v, i, j: max(v) - min(v)}
    for p in _problems("bar"):
        px = _pixels(p)
        colour = np.array(p.meta["colour"])
        measured = {}
        for bar in p.meta["bars"]:
            column = px[:, (bar["x0"] + bar["x1"]) // 2]
            rows = np.flatnonzero((np.abs(column - colour).sum(-1) == 0))
            measured[bar["label"]] = round((p.meta["bottom"] - rows.min()) / p.meta["unit"])
        labels = list(measured)
        i, j = (labels.index(x) for x in p.meta["pair"])
        assert _value(p) == ops[p.meta["op"]](list(measured.values()), i, j)


def test_triangle_answer_is_the_drawn_angle_at_the_question_mark():
    for p in _problems("triangle"):
        v = p.meta["vertices"]
        k = p.meta["unknown"]
        a, b, c = v[k], v[(k + 1) % 3], v[(k + 2) % 3]
        drawn = generator._angle_at(a, b, c)
        assert abs(drawn - _value(p)) < 1.5  # vertices are rounded to whole pixels
        assert sum(p.meta["angles"]) == 180 and _value(p) == 180 - sum(x for i, x in enumerate(p.meta["angles"]) if i != k)


def test_clock_answer_matches_the_hand_angles():
    for p in _problems("clock"):
        cx, cy = p.meta["center"]
        turns = {}
        for hand, (x, y) in p.meta["hands"].items():
            turns[hand] = (math.degrees(math.atan2(x - cx, cy - y)) % 360) / 360
        minute = round(turns["minute"] * 60) % 60
        hour = math.floor(turns["hour"] * 12 + 1e-6 - minute / 60 + 0.5) % 12  # hour hand moved minute/60 on
        if "past the hour" in p.question:
            assert _value(p) == minute
        else:
            assert _value(p) == hour * 60 + minute


def test_invalid_options_raise():
    with pytest.raises(ValueError):
        generate_problem(0, 0, tasks=("nope",))
    with pytest.raises(ValueError):
        generate_problem(0, 0, image_size=100)
