"""Ground truths and options as datasets deliver them (floats, numpy arrays, dicts, Unicode), and caps on the
work done outside the verifier's time limit."""

import time

import numpy as np
import pytest

from reward_fns import compute_score, score_accuracy

WRAP = "<think>work</think><answer>\\boxed{{{}}}</answer>"


def acc(box, truth, options=None):
    return score_accuracy(WRAP.format(box), truth, options, timeout_s=30)


@pytest.mark.parametrize(
    ("box", "truth"),
    [
        ("0.0000001", 1e-7),
        ("10^{-7}", 1e-7),
        ("0.0025", "2.5e-3"),
        ("\\frac{1}{400}", "2.5E-3"),
        ("100000000000000000000", 1e20),
        ("2.5 \\times 10^{-3}", "2.5e-3"),
        ("0.5", np.float32(0.5)),
        ("3", np.int64(3)),
        ("-0.000012", -1.2e-5),
    ],
)
def test_numbers_in_exponent_form_are_compared_as_numbers(box, truth):
    r = acc(box, truth)
    assert (r.acc, r.reason) == (1.0, "correct")


@pytest.mark.parametrize(("box", "truth"), [("e", "2.5e-3"), ("2.5e-3", "2.5e-3 + 1"), ("2.5", "2.5e-3"), ("2.5e", 2.5e-3)])
def test_exponent_form_does_not_read_e_as_eulers_number(box, truth):
    assert acc(box, truth).acc == 0.0


def test_exponent_form_in_the_answer_is_a_number_too():
    assert acc("2.5e-3", "0.0025").acc == 1.0


@pytest.mark.parametrize("truth", [float("nan"), float("inf"), 10**5000, True, np.bool_(True)], ids=["nan", "inf", "10**5000", "True", "np.True_"])
def test_unusable_numbers_are_invalid_input_without_raising(truth):
    r = acc("1", truth)
    assert (r.acc, r.reason) == (0.0, "invalid_input")


@pytest.mark.parametrize("truth", ["None", "nan", "null"])
def test_a_ground_truth_that_is_a_missing_value_is_invalid(truth):
    r = acc(truth, truth)
    assert (r.acc, r.reason) == (0.0, "invalid_input")


def test_a_numpy_array_is_a_list_of_acceptable_answers():
    truths = np.array(["2", "3"], dtype=object)
    assert acc("3", truths).acc == 1.0
    assert acc("2", truths).acc == 1.0
    assert acc("4", truths).acc == 0.0
    assert acc("0.5", np.array([0.5, 0.25])).acc == 1.0


def test_options_as_a_numpy_array():
    options = np.array(["10", "12", "14"], dtype=object)
    assert acc("12", "B", options).acc == 1.0
    assert acc("14", "B", options).acc == 0.0


def test_dict_options_are_read_by_their_values_and_letter_keys():
    options = {"B": "12", "A": "10", "C": "14"}
    assert acc("12", "B", options).acc == 1.0
    assert acc("10", "B", options).acc == 0.0
    assert acc("C", "C", options).acc == 1.0


def test_dict_options_without_letter_keys_are_read_in_order():
    options = {"first": "10", "second": "12"}
    assert acc("12", "B", options).acc == 1.0
    assert acc("10", "B", options).acc == 0.0


@pytest.mark.parametrize(
    ("box", "truth"),
    [
        ("½", "0.5"),
        ("2²", "4"),
        ("1⁄2", "0.5"),
        ("√2", "\\sqrt{2}"),
        ("x²", "x^2"),
        ("1½", "\\frac{3}{2}"),
        ("−3", "-3"),
        ("5 cm²", "5"),
        ("2√3", "\\sqrt{12}"),
        ("π/2", "\\frac{\\pi}{2}"),
    ],
)
def test_unicode_math_is_normalised(box, truth):
    r = acc(box, truth)
    assert (r.acc, r.reason) == (1.0, "correct")


@pytest.mark.parametrize(("box", "truth"), [("½", "2"), ("2²", "2"), ("x²", "2x"), ("√2", "2")])
def test_unicode_math_wrong_answers_stay_wrong(box, truth):
    assert acc(box, truth).acc == 0.0


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def test_a_million_options_are_rejected_cheaply():
    options = [str(i) for i in range(1_000_000)]
    r, seconds = _timed(acc, "12", "B", options)
    assert (r.acc, r.reason) == (0.0, "too_many_options")
    assert seconds < 0.5


def test_options_from_a_generator_are_capped_too():
    r, seconds = _timed(acc, "12", "B", (str(i) for i in range(10**9)))
    assert (r.acc, r.reason) == (0.0, "too_many_options")
    assert seconds < 0.5


def test_a_huge_option_is_rejected_cheaply():
    options = ["10", "1" * 50_000_000]
    r, seconds = _timed(acc, "12", "B", options)
    assert (r.acc, r.reason) == (0.0, "option_too_long")
    assert seconds < 0.5


def test_a_huge_list_of_ground_truths_is_rejected_cheaply():
    r, seconds = _timed(acc, "12", [str(i) for i in range(1_000_000)])
    assert (r.acc, r.reason) == (0.0, "invalid_input")
    assert seconds < 0.5


def test_a_huge_response_is_rejected_cheaply():
    response = "<think>" + "x" * 50_000_000 + "</think><answer>\\boxed{1}</answer>"
    r, seconds = _timed(compute_score, "x", response, "1")
    assert (r["acc"], r["format"], r["reason"]) == (0.0, 0.0, "response_too_long")
    assert seconds < 0.5


def test_letter_answers_still_work_with_ordinary_options():
    assert acc("B", "B", ["10", "12"]).acc == 1.0
