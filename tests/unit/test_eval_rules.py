"""Benchmark rules and answer extraction on small labelled fixtures (realistic responses written for these tests).

Each case is (benchmark, TSV columns as VLMEvalKit's TSV holds them, response, expected acc strict, expected acc
lenient). The labels are what the benchmark's own rule says about the response.
"""

from __future__ import annotations

import pytest

from verl_rise.evaluation import FieldError, aggregate, score_row
from verl_rise.evaluation.extract import extract_lenient, extract_strict

MV_FLOAT = {"question_type": "free_form", "answer_type": "float", "precision": "1.0", "answer": "1.2",
            "choices": None, "unit": None}
MV_FLOAT2 = {**MV_FLOAT, "precision": "2.0", "answer": "1.45"}
MV_INT = {"question_type": "free_form", "answer_type": "integer", "precision": None, "answer": "60"}
MV_LIST = {"question_type": "free_form", "answer_type": "list", "answer": "[2007, 2008]"}
MV_MC = {"question_type": "multi_choice", "answer_type": "text", "answer": "8/11",
         "choices": "['3/11', '8/11', '6/11', '3/5']", "answer_option": "B"}
MV_YESNO = {"question_type": "multi_choice", "answer_type": "text", "answer": "No", "choices": "['Yes', 'No']"}
MATHV_MC = {"answer": "B", "choices": "['$16 \\\\mathrm{~cm}^{2}$', '$8 \\\\mathrm{~kg}$', '$12 \\\\mathrm{~cm}^{2}$', "
                                      "'$10 \\\\mathrm{~cm}^{2}$', '$14 \\\\mathrm{~cm}^{2}$']"}
MATHV_FIGURE_MC = {"answer": "C", "choices": "['A', 'B', 'C', 'D', 'E']"}
MATHV_FREE = {"answer": "\\frac{1}{2}", "choices": "[]"}
VERSE_MC = {"answer": "C", "question_type": "multi-choice",
            "question_for_eval": "Find BC.\nChoices:\nA:2\nB:2√{3}\nC:√{3}\nD:2√{2}"}
VERSE_FREE = {"answer": "(-2, 1]", "question_type": "free-form",
              "question_for_eval": "Write the set in interval notation."}
DYNA_FLOAT = {"answer": "3.142", "answer_type": "float", "qid": "7", "varid": "1"}
DYNA_MC = {"answer": "B", "answer_type": "multiple choice", "question": "Which is larger?\nA: f(1)\nB: f(2)\nC: equal"}
DYNA_FREE = {"answer": "y = 2x + 1", "answer_type": "free form"}
WEMATH = {"answer": "C", "A": "30°", "B": "45°", "C": "60°", "D": "90°", "ID": "1", "key": "2steps_1"}
LOGIC_TWO = {"answer": "A, C", "question": "Which two shapes complete the pattern? Select from A-E"}
LOGIC_ONE = {"answer": "D", "question": "Which box comes next?"}

CASES = [
    # MathVista: float rounded to `precision` on both sides, units and prose around the number.
    ("mathvista", MV_FLOAT, "d = sqrt(0.4*0.25/750) = 0.0115 m... so the answer is 1.2", 0, 1),
    ("mathvista", MV_FLOAT, "<think>...</think><answer>\\boxed{1.24}</answer>", 1, 1),
    ("mathvista", MV_FLOAT, "<think>...</think><answer>\\boxed{1.26}</answer>", 0, 0),
    ("mathvista", MV_FLOAT2, "Luca needs $1.45 to buy both candies.\nAnswer: $1.45", 0, 1),
    ("mathvista", MV_INT, "90 - 80 = 10, so each step is 10.\nThe missing number is 60.", 0, 1),
    ("mathvista", MV_INT, "The answer is 60 apples.", 0, 1),
    ("mathvista", MV_INT, "The answer is 61.", 0, 0),
    ("mathvista", MV_LIST, "The line peaks between 2007 and 2008. Final answer: [2007, 2008]", 0, 1),
    ("mathvista", MV_MC, "Eight of the eleven parts are blue.\nThe correct answer is (B) 8/11.", 0, 1),
    ("mathvista", MV_MC, "Eight of the eleven parts are blue, so the fraction is 8/11.", 0, 1),
    ("mathvista", MV_MC, "<think>count</think><answer>\\boxed{B}</answer>", 1, 1),
    ("mathvista", MV_MC, "The answer is (C) 6/11.", 0, 0),
    ("mathvista", MV_YESNO, "The bar for 2010 is shorter than 2009's, so no.\nAnswer: No", 0, 1),
    # MATH-Vision: letter, or the right option's text (which MATH-V's own grader misses), or math equivalence.
    ("mathvision", MATHV_MC, "The mass is 8 kg, so the answer is $8 \\mathrm{~kg}$.", 0, 1),
    ("mathvision", MATHV_MC, "Comparing the weights, \\boxed{B}", 1, 1),
    ("mathvision", MATHV_MC, "Comparing the weights, \\boxed{D}", 0, 0),
    ("mathvision", MATHV_FIGURE_MC, "Kite C has 9 segments, more than any other.\nThe answer is C.", 0, 1),
    ("mathvision", MATHV_FIGURE_MC, "Both A and C look long. The answer is A or C.", 0, 0),
    ("mathvision", MATHV_FREE, "The probability is \\boxed{0.5}", 1, 1),
    ("mathvision", MATHV_FREE, "Half of the tiles are shaded, so the answer is 1/2.", 0, 1),
    # MathVerse: option text from the question's Choices list; interval notation compared by the verifier.
    ("mathverse", VERSE_MC, "BC = 2 sin 60° = √{3}. So the answer is C:√{3}", 0, 1),
    ("mathverse", VERSE_MC, "Therefore, the correct option is B.", 0, 0),
    ("mathverse", VERSE_FREE, "Open at -2, closed at 1: \\boxed{(-2, 1]}", 1, 1),
    ("mathverse", VERSE_FREE, "So the set is (-2, 1).\nThe answer is (-2, 1)", 0, 0),
    # DynaMath: float within 0.001, JSON short answers, free form by containment.
    ("dynamath", DYNA_FLOAT, '{"solution": "The area is pi r^2 with r = 1.", "short answer": "3.1416"}', 0, 1),
    ("dynamath", DYNA_FLOAT, '{"solution": "...", "short answer": "3.15"}', 0, 0),
    ("dynamath", DYNA_MC, "f is increasing, so f(2) is larger. Answer: B", 0, 1),
    ("dynamath", DYNA_FREE, "The line through the points is y = 2x + 1.\nThe answer is y = 2x + 1", 0, 1),
    # WeMath: letter or option text.
    ("wemath", WEMATH, "The angle is a third of a straight angle... Answer: C. 60°", 0, 1),
    ("wemath", WEMATH, "Each angle of the equilateral triangle measures 60°.", 0, 1),
    ("wemath", WEMATH, "<answer>\\boxed{A}</answer>", 0, 0),
    ("wemath", WEMATH, "等边三角形的每个内角都是60°。\n\n所以选项C是正确答案。", 0, 1),
    # LogicVista: several letters must all be named, and nothing else.
    ("logicvista", LOGIC_TWO, "Shapes A and C fit the rotation rule.\nAnswer: A, C", 0, 1),
    ("logicvista", LOGIC_TWO, "<think>rotate</think><answer>\\boxed{AC}</answer>", 1, 1),
    ("logicvista", LOGIC_TWO, "Answer: A", 0, 0),
    ("logicvista", LOGIC_ONE, "The dots move clockwise, so the next box is D.\nThe answer is D.", 0, 1),
]


@pytest.mark.parametrize(("benchmark", "row", "response", "strict", "lenient"), CASES)
def test_rules_and_extraction_on_labelled_cases(benchmark, row, response, strict, lenient):
    assert score_row(benchmark, row, response, "strict")["acc"] == strict
    got = score_row(benchmark, row, response, "lenient")
    assert got["acc"] == lenient, got


def test_mathvista_refusal_goes_to_the_nearest_choice_like_mathvistas_scorer():
    # MathVista's calculate_score maps any extraction to the most similar choice; a refusal picks one too.
    row = {"question_type": "multi_choice", "answer_type": "text", "answer": "Yes", "choices": "['Yes', 'No']"}
    assert score_row("mathvista", row, "I cannot see the image.", "lenient")["pred"] in ("A", "B")
    # ... but a stated option wins over similarity.
    assert score_row("mathvista", row, "The answer is No.", "lenient")["pred"] == "B"


def test_strict_is_the_rise_contract():
    assert extract_strict("<think>a</think><answer>The answer is \\boxed{7}</answer>").text == "7"
    assert extract_strict("The answer is 7.").found is False
    # the LAST box counts, as in reward_fns
    assert extract_strict("\\boxed{3} no wait \\boxed{4}").text == "4"


@pytest.mark.parametrize(("response", "text", "method"), [
    ("Adding the bars: 12 + 30 = 42.\nThe answer is 42.", "42", "cue"),
    ("**Final Answer:** (C) 6/11", "(C) 6/11", "cue"),
    ("<think>count them</think><answer>There are 5 cubes.</answer>", "There are 5 cubes", "answer_tag"),
    ('{"solution": "...", "short answer": "B"}', "B", "json"),
    ("(B)\nBecause the bar is tallest.", "B", "leading_option"),
    ("Counting row by row gives\n17", "17", "last_line"),
    ("已知∠B=65°,所以∠DEF=25°。\n\n答案:D", "D", "cue"),
    ("The share is highest in **2019**, with 25.8%.\n\nIn 2020 it fell to 15.4%.\n\nI hope this helps!",
     "2019", "bold"),
    ("Okay, so x = 360° - 290° = 70°.\n\nC", "C", "letter_line"),
    ("The option letter is D.", "D", "cue"),
    ("", "", "empty_response"),
])
def test_lenient_extraction_sources(response, text, method):
    got = extract_lenient(response)
    assert (got.text, got.method) == (text, method)


def test_closing_pleasantries_are_not_the_answer():
    response = ("The yellow bath towel costs $12. The navy blue bath mat costs $17. So the navy blue bath mat costs "
                "$17-$12 = $5 more than the yellow bath towel.\n\nDo you have other questions for me?")
    assert extract_lenient(response, want_number=True) == extract_lenient(response.rsplit("\n", 2)[0], want_number=True)
    assert extract_lenient(response, want_number=True).text == "5"


def test_lenient_number_fallback_only_when_a_number_is_wanted():
    response = "We subtract the smaller bar from the larger one, which leaves a difference of 14 units in total here"
    assert extract_lenient(response, want_number=True).text == "14"
    assert extract_lenient(response).method == "last_sentence"


def test_types_are_parsed_from_tsv_text():
    # precision "1.0" -> 1 decimal; a missing precision falls back to 2 decimals (MathVista's default).
    assert score_row("mathvista", {**MV_FLOAT, "precision": 1}, "Answer: 1.16", "lenient")["acc"] == 1
    row = {**MV_FLOAT, "precision": float("nan"), "answer": "1.25"}
    assert score_row("mathvista", row, "Answer: 1.254", "lenient")["acc"] == 1


def test_bad_rows_raise_naming_the_field():
    with pytest.raises(FieldError, match="question_type"):
        score_row("mathvista", {"answer": "1"}, "1")
    with pytest.raises(FieldError, match="choices"):
        score_row("mathvista", {**MV_MC, "choices": "not a list"}, "B")
    with pytest.raises(ValueError, match="unknown benchmark"):
        score_row("mmmu", {}, "B")
    with pytest.raises(ValueError, match="judge"):
        score_row("mathvista", MV_INT, "60", "judge")


def test_aggregate_dynamath_average_and_worst_case():
    rows = [{"qid": q, "varid": v, "acc": a} for q, v, a in
            [("1", "1", 1), ("1", "2", 1), ("2", "1", 1), ("2", "2", 0), ("3", "1", 0), ("3", "2", 0)]]
    m = aggregate("dynamath", rows)
    assert m["average_acc"] == pytest.approx(0.5)
    assert m["worst_case_acc"] == pytest.approx(1 / 3)
    assert m["headline"] == m["worst_case_acc"]


def test_aggregate_wemath_four_dimensions_and_scores():
    def group(gid, steps, subs, multi):
        rows = [{"ID": gid, "key": f"{steps}steps_{i + 1}", "acc": a} for i, a in enumerate(subs)]
        return rows + [{"ID": gid, "key": f"{steps}steps_multi", "acc": multi}]

    rows = (group("1", 2, [1, 1], 1)      # complete mastery (strict and loose)
            + group("2", 2, [1, 0], 1)    # rote memorisation strict, complete mastery loose
            + group("3", 2, [1, 1], 0)    # inadequate generalisation
            + group("4", 3, [0, 0, 1], 0)  # insufficient knowledge
            + group("5", 3, [0, 0, 0], 1))  # rote memorisation strict and loose
    m = aggregate("wemath", rows)
    assert (m["IK"], m["IG"], m["CM_strict"], m["CM_loose"], m["RM_strict"], m["RM_loose"]) == (1, 1, 1, 2, 2, 1)
    assert m["score_strict"] == pytest.approx((5 - 0.5 * 1 - 2 - 1) / 5)
    assert m["score_loose"] == pytest.approx((5 - 0.5 * 1 - 1 - 1) / 5)
    assert m["RM_strict_rate"] == pytest.approx(2 / 3)
    assert m["s2_acc"] == pytest.approx(2 / 3) and m["s3_acc"] == pytest.approx(1 / 2)
    assert m["headline"] == m["score_strict"]
    with pytest.raises(FieldError, match="incomplete"):
        aggregate("wemath", rows[:-1])


def test_aggregate_plain_accuracy_and_errors():
    assert aggregate("logicvista", [{"acc": 1}, {"acc": 0}, {"acc": 1}, {"acc": 1}])["acc"] == 0.75
    with pytest.raises(ValueError, match="no scored rows"):
        aggregate("mathvista", [])
