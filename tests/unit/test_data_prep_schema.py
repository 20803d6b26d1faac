"""Row contract pieces: placeholder placement, choice answers, user message rendering, row dict."""

from __future__ import annotations

import pyarrow as pa
import pytest

from data_prep.errors import RowRejected
from data_prep.images import RawImage
from data_prep.schema import (
    ARROW_SCHEMA,
    CHOICE_INSTRUCTION,
    Problem,
    build_row,
    finalize_problem,
    normalize_choice_answer,
    place_image_placeholders,
    render_user_content,
)


def test_composite_image_takes_the_first_marker_only():
    text, order = place_image_placeholders("A <image1> B <image2> C <image1>", 1)
    assert text == "A <image> B <image2> C <image1>" and order == [0]


def test_one_image_per_marker_follows_first_occurrence_order():
    text, order = place_image_placeholders("see <image2> then <image1> and <image2> again", 2)
    assert text == "see <image> then <image> and <image2> again"
    assert order == [1, 0]  # the first placeholder shows image 2


@pytest.mark.parametrize(
    "question,n,expected",
    [("plain text", 2, "<image><image>\nplain text"), ("x <image> y", 1, "x <image> y"), ("no images", 0, "no images")],
)
def test_existing_or_missing_placeholders(question, n, expected):
    assert place_image_placeholders(question, n)[0] == expected


@pytest.mark.parametrize(
    "question,n",
    [("<image1> <image3>", 2), ("<image1>", 0), ("x <image> <image>", 1), ("<image> and <image1>", 1), ("q <image>", 0)],
)
def test_placeholder_mismatch(question, n):
    with pytest.raises(RowRejected) as exc:
        place_image_placeholders(question, n)
    assert exc.value.reason == "placeholder_mismatch"


@pytest.mark.parametrize("answer", ["C", "c", "(C)", "C.", " C "])
def test_choice_answer_letter_forms(answer):
    assert normalize_choice_answer(answer, ["1", "2", "3"]) == "C"


def test_choice_answer_outside_options_and_option_text():
    with pytest.raises(RowRejected) as exc:
        normalize_choice_answer("D", ["1", "2", "3"])
    assert exc.value.reason == "answer_not_in_options"
    with pytest.raises(RowRejected):
        normalize_choice_answer("2", ["1", "2", "3"])
    assert normalize_choice_answer("2", ["1", "2", "3"], allow_option_text=True) == "B"


def test_render_user_content():
    assert render_user_content("Q?", []) == "Q?"
    assert render_user_content("Q?", ["4", "5"]) == f"Q?\n\nOptions:\nA. 4\nB. 5\n{CHOICE_INSTRUCTION}"
    assert render_user_content("Q?", ["A", "B", "C"]) == f"Q?\n\nOptions: A, B, C\n{CHOICE_INSTRUCTION}"


def test_finalize_rejects_empty_answer_and_text_free_rows():
    with pytest.raises(RowRejected) as exc:
        finalize_problem(Problem(question="Q?", answer="   "))
    assert exc.value.reason == "empty_answer" and exc.value.field == "answer"
    with pytest.raises(RowRejected) as exc:
        finalize_problem(Problem(question="  ", answer="1"))
    assert exc.value.reason == "empty_question"
    # An image-only question is fine (the text is in the picture).
    p = finalize_problem(Problem(question="<image1>", answer="3", images=[RawImage(b"x", None)]))
    assert p.question == "<image>" and p.answer_type == "free_form"


def test_build_row_matches_the_arrow_schema():
    p = finalize_problem(Problem(question="How many?", answer="(b)", options=["1", "2"], images=[RawImage(b"x", "p")]))
    row = build_row(p, [{"bytes": b"x", "path": "p"}], index=7, split="val", data_source="ds", system_prompt="SYS")
    table = pa.Table.from_pylist([row], schema=ARROW_SCHEMA)
    back = table.to_pylist()[0]
    assert back["prompt"] == [{"role": "system", "content": "SYS"},
                              {"role": "user", "content": render_user_content("<image>\nHow many?", ["1", "2"])}]
    assert back["reward_model"] == {"style": "rule", "ground_truth": "B"}
    assert back["extra_info"] == {"prompt_id": p.prompt_id, "index": 7, "split": "val", "question": "<image>\nHow many?",
                                  "options": ["1", "2"], "answer": "B", "answer_type": "choice"}
    no_sys = build_row(p, [{"bytes": b"x", "path": "p"}], index=0, split="s", data_source="d", system_prompt=None)
    assert [m["role"] for m in no_sys["prompt"]] == ["user"]
