"""Equations, big operators, named solutions and inequality chains: judged as what they state, never split."""

import pytest

from reward_fns import score_accuracy
from reward_fns.normalize import strip_equation_lhs

WRAP = "<think>work</think><answer>\\boxed{{{}}}</answer>"


def acc(box, truth, **kwargs):
    return score_accuracy(WRAP.format(box), truth, timeout_s=30, **kwargs)


# (box, a value its subscript or bounds mention but the expression does not equal)
BIG_OPERATORS = [
    ("\\sum_{k=1}^{3} k", "1"),
    ("\\sum_{k=1}^{3} k", "3"),
    ("\\sum_{k=0}^{3} k", "0"),
    ("\\prod_{k=1}^{5} k", "1"),
    ("\\sum_{n=0}^{\\infty}2^{-n}", "0"),
    ("\\sum_{n=0}^{\\infty}2^{-n}", "1"),
    ("\\max_{x=1} 5x", "1"),
    ("\\min_{x=0}^{2} (x+3)", "0"),
    ("\\lim_{x=0} (x+2)", "0"),
    ("\\int_{x=0}^{1} 2x\\,dx", "0"),
    ("\\int_{x=0}^{1} x dx", "0"),
    ("\\int_{x=2}^{3} x \\, dx", "2"),
    ("\\sum_{k=1}^{3} k = 6", "1"),
]


@pytest.mark.parametrize(("box", "truth"), BIG_OPERATORS)
def test_a_big_operator_is_not_split_at_its_subscript(box, truth):
    # Stripping `\sum_{k` as an equation's left side would leave `1}^{3} k` and credit a small number.
    assert strip_equation_lhs(box) == box
    r = acc(box, truth)
    assert r.acc == 0.0, (box, truth, r.reason)


@pytest.mark.parametrize(
    ("box", "truth"), [("\\sum_{k=1}^{3} k", "6"), ("\\prod_{k=1}^{5} k", "120"), ("\\lim_{x=0} (x+2)", "2"), ("\\int_{x=0}^{1} x dx", "\\frac{1}{2}")]
)
def test_a_big_operator_is_judged_as_the_expression(box, truth):
    # Against its value it may be judged right (when the verifier evaluates it) or wrong, never a hack.
    r = acc(box, truth)
    assert r.reason in {"correct", "wrong"}


def test_an_equation_whose_right_side_holds_an_operator_keeps_it_whole():
    assert strip_equation_lhs("S = \\sum_{k=1}^{3} k") == "\\sum_{k=1}^{3} k"
    assert acc("S = \\sum_{k=1}^{3} k", "1").acc == 0.0


@pytest.mark.parametrize(("box", "expected"), [("x = 3", "3"), ("a_{37} = 19", "19"), ("\\theta = 30", "30"), ("x = 2 + 1 = 3", "3")])
def test_a_plain_equation_still_gives_its_right_side(box, expected):
    assert strip_equation_lhs(box) == expected


@pytest.mark.parametrize(
    ("box", "truth", "expected"),
    [
        ("x=1, y=2", "2", 0.0),  # two equations are not the single value of the last one (a hedge)
        ("x=1, y=2", "1", 0.0),
        ("a_{37} = 19, a_3 = 2", "a_3 = 2, a_{37} = 19", 1.0),  # same names, other order
        ("a_3 = 2, a_{37} = 19", "a_3 = 2, a_{37} = 19", 1.0),
        ("2, 19", "a_3 = 2, a_{37} = 19", 1.0),  # without names, in the ground truth's order
        ("19, 2", "a_3 = 2, a_{37} = 19", 0.0),  # without names, values swapped
        ("a_3 = 19, a_{37} = 2", "a_3 = 2, a_{37} = 19", 0.0),
        ("y = 2, x = 1", "x = 1, y = 2", 1.0),
        ("y = 1, x = 2", "x = 1, y = 2", 0.0),
        ("x = 1, z = 2", "x = 1, y = 2", 0.0),
        ("x = 1", "x = 1, y = 2", 0.0),
        ("x = \\frac{1}{2}, y = \\sqrt{2}", "y = \\sqrt{2}, x = 0.5", 1.0),
    ],
)
def test_named_solutions(box, truth, expected):
    r = acc(box, truth)
    assert r.acc == expected, r.reason


@pytest.mark.parametrize(
    ("box", "truth", "expected"),
    [
        ("-2 \\le x \\le 7", "x \\in [-2, 7]", 1.0),
        ("-2 \\leq x \\leq 7", "[-2, 7]", 1.0),
        ("x \\in [-2, 7]", "-2 \\le x \\le 7", 1.0),
        ("-2 < x \\le 7", "(-2, 7]", 1.0),
        ("7 \\ge x \\ge -2", "[-2, 7]", 1.0),
        ("-2 < x < 7", "[-2, 7]", 0.0),
        ("-2 \\le x \\le 8", "[-2, 7]", 0.0),
        ("-2 ≤ x ≤ 7", "[-2, 7]", 1.0),
    ],
)
def test_an_inequality_chain_equals_its_interval(box, truth, expected):
    r = acc(box, truth)
    assert r.acc == expected, r.reason
