"""RISE-format rewrite of expert responses: every kept result is re-scored here with the RISE reward."""

from __future__ import annotations

import pytest

from reward_fns import compute_score
from reward_fns.extract import unbox_all
from verl_rise.sft_data import records as R
from verl_rise.sft_data.rewrite import (
    AS_IS,
    BOXED,
    FINAL_SENTENCE,
    MODEL_ANSWER,
    option_letters,
    reasoning_chars,
    to_rise_format,
)

# Real MATH-Vision option lists (train problems 19 and 87).
EXPRESSIONS = ["$2+4+3$", "$2 \\cdot 4+3$", "$2+4 \\cdot 3$", "$2 \\cdot 4 \\cdot 3$", "$2+4-3$"]
WEIGHTS = ["$4 \\mathrm{~kg}$", "$8 \\mathrm{~kg}$", "$10 \\mathrm{~kg}$", "$12 \\mathrm{~kg}$", "$16 \\mathrm{~kg}$"]
STEPS = "She changes each banana into 4 apples, so $2 \\cdot 4$ apples; each apple gives 3 mandarins."


def _kept(result, ground_truth, options=None):
    assert result.ok, result
    score = compute_score("MathLLMs/MathVision", result.text, ground_truth, {"options": options or []})
    assert (score["acc"], score["format"]) == (1.0, 1.0)
    assert result.text.count("\\boxed") == 1, "the only box must be the final answer's"
    return score


def test_boxed_option_text_becomes_the_letter():
    response = f"{STEPS}\nTherefore, Eve has $\\boxed{{2 \\cdot 4 \\cdot 3}}$ mandarins."
    result = to_rise_format(response, "D", EXPRESSIONS)
    score = _kept(result, "D", EXPRESSIONS)
    assert result.method == BOXED and result.pred == "D" and score["pred"] == "D"
    think = result.text.split("</think>")[0]
    assert "2 \\cdot 4 \\cdot 3$ mandarins" in think  # the expert's words stay, unboxed


def test_option_text_matching_uses_the_reward_choice_logic():
    assert option_letters("8 kg", WEIGHTS) == {"B"}
    assert option_letters("(E)", WEIGHTS) == {"E"}
    assert option_letters("9 kg", WEIGHTS) == set()
    assert option_letters("A or B", WEIGHTS) == set()  # a hedge names no option


def test_boxed_text_of_the_wrong_option_is_rejected():
    response = f"{STEPS}\nSo Eve has $\\boxed{{2 \\cdot 4+3}}$ mandarins."
    result = to_rise_format(response, "D", EXPRESSIONS)
    assert not result.ok and result.reason == R.WRONG_ANSWER and result.pred == "B"


def test_final_sentence_without_box_is_recovered():
    response = ("Let x be the weight of Max. The mother and Max weigh 52 + x = 60, so x = 8.\n\n"
                "The final answer is (B)")
    result = to_rise_format(response, "B", WEIGHTS)
    _kept(result, "B", WEIGHTS)
    assert result.method == FINAL_SENTENCE


def test_an_answer_stated_before_more_reasoning_is_not_recovered():
    # Real gemini-pro-vision trace of problem 88: the stated answer (3) contradicts the last line (9).
    response = ("The answer is 3.\n\n**Step-by-step solution:**\n\nThere are 6 children in front of Susi and "
                "3 children behind Kim. So there are 6 + 3 = 9 children between Susi and Kim.")
    result = to_rise_format(response, "3", [], model_answer="3")
    assert not result.ok and result.reason == R.NO_FINAL_ANSWER


def test_model_answer_only_when_the_response_ends_with_it():
    reasoning = "The numbers on opposite faces add up to 7, and the visible face shows 2, so we need 7 - 2.\n"
    result = to_rise_format(reasoning + "5.", "5", [], model_answer="5")
    _kept(result, "5")
    assert result.method == MODEL_ANSWER
    # model_answer that the response does not end with is not used.
    wrong = to_rise_format(reasoning + "I am not sure.", "5", [], model_answer="5")
    assert not wrong.ok and wrong.reason == R.NO_FINAL_ANSWER


@pytest.mark.parametrize("response", ["The answer is (D).", "11.", "The answer is \\boxed{D}.",
                                      "Maria took \\boxed{2} apples from each bag."])
def test_bare_answers_have_no_reasoning(response):
    gt = "D" if "D" in response else ("11" if "11" in response else "2")
    options = ["1", "2", "3", "4", "5"] if gt == "D" else []
    result = to_rise_format(response, gt, options, model_answer=gt)
    assert not result.ok and result.reason == R.NO_REASONING
    assert to_rise_format(response, gt, options, model_answer=gt, min_reasoning_chars=0).ok


def test_reasoning_chars_keeps_a_concluding_clause_apart():
    clause = "A tetrahedron has 4 faces, so Elsa has $\\boxed{42}$ faces."
    assert reasoning_chars(clause) == len("Atetrahedronhas4faces")
    final_line = "$\\angle BMC = 120^\\circ$\n\nTherefore, the answer is (D)."
    assert reasoning_chars(final_line) == len("$\\angleBMC=120^\\circ$")


def test_already_rise_response_is_kept_as_is():
    response = "<think> 52 + x = 60 gives x = 8, i.e. option B. </think><answer> The answer is $\\boxed{B}$ </answer>"
    result = to_rise_format(response, "B", WEIGHTS)
    assert result.ok and result.method == AS_IS and result.text == response


def test_think_block_with_unformatted_answer_is_rewritten():
    response = "<think>\n52 + x = 60, so Max weighs 8 kg.\n</think>\n\nMax weighs **8 kg**, option B: \\boxed{B}"
    result = to_rise_format(response, "B", WEIGHTS)
    _kept(result, "B", WEIGHTS)
    assert result.method == BOXED and "52 + x = 60" in result.text


def test_separate_reasoning_content_becomes_the_think_block():
    result = to_rise_format("\\boxed{60}", "60", [], reasoning="Each number is ten less than the one before it.")
    _kept(result, "60")
    assert result.text.startswith("<think> Each number is ten less")


@pytest.mark.parametrize("bad", [None, "", "   ", 7])
def test_empty_response(bad):
    assert to_rise_format(bad, "5").reason == R.EMPTY_RESPONSE


def test_tags_inside_the_reasoning_are_rejected():
    response = "We compare <answer> blocks here; 6 + 4 = 10 is the sum of both numbers.\nThe answer is \\boxed{10}"
    result = to_rise_format(response, "10")
    assert not result.ok and result.reason == R.BAD_FORMAT


def test_unbox_all_leaves_incomplete_boxes():
    assert unbox_all("a \\boxed{\\frac{1}{2}} b \\boxed{x") == "a \\frac{1}{2} b \\boxed{x"
    assert unbox_all("\\boxed{\\boxed{2}}") == "2"
