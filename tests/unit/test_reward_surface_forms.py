"""Surface forms the reward used to miss on labelled data (issue 14, item 7): each right form scores 1, its
near miss 0, and no case runs into the time limit."""

import time

import pytest

from reward_fns import score_accuracy

WRAP = "<think>work</think><answer>\\boxed{{{}}}</answer>"


def acc(box, truth, options=None):
    return score_accuracy(WRAP.format(box), truth, options, timeout_s=30)


@pytest.mark.parametrize(
    ("box", "truth", "expected"),
    [
        # thousands separators written with \! (a negative thin space)
        ("1\\!000", "1000", 1.0),
        ("1\\!,\\!000", "1000", 1.0),
        ("12\\!,\\!345\\!,\\!678", "12345678", 1.0),
        ("1\\!,\\!001", "1000", 0.0),
        # percent as a word
        ("25 pct", "25\\%", 1.0),
        ("25 \\text{pct}", "0.25", 1.0),
        ("25 percentage", "0.25", 1.0),
        ("25 \\text{ per cent}", "25", 1.0),
        ("26 pct", "25\\%", 0.0),
        # currency signs and codes
        ("\\$5", "5", 1.0),
        ("5 USD", "5", 1.0),
        ("USD 5", "5", 1.0),
        ("₹5", "5", 1.0),
        ("5€", "5", 1.0),
        ("5 €", "5", 1.0),
        ("€12.50", "12.5", 1.0),
        ("6 USD", "5", 0.0),
        # units and count nouns inside \textbf{}
        ("21 \\textbf{ jumps}", "21", 1.0),
        ("5\\,\\textbf{cm}^{2}", "5", 1.0),
        ("12 \\mathbf{ apples}", "12", 1.0),
        ("22 \\textbf{ jumps}", "21", 0.0),
        ("3 \\textbf{ or } 4", "3", 0.0),
        # a ground truth that is literally None rewards nothing
        ("None", "None", 0.0),
    ],
)
def test_surface_form(box, truth, expected):
    r = acc(box, truth)
    assert r.acc == expected, r.reason


@pytest.mark.parametrize("box", ["99^{-99^{-99^{-99}}}", "9^{-9^{-9^{-9}}}", "(-99)^{-99^{-99}}"])
def test_a_negative_power_tower_is_rejected_before_the_verifier(box):
    start = time.perf_counter()
    r = acc(box, "0")
    assert (r.acc, r.reason) == (0.0, "power_tower")
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(("box", "truth"), [("e^{-x^2}", "e^{-x^{2}}"), ("2^{-3}", "\\frac{1}{8}"), ("10^{-2}", "0.01")])
def test_single_negative_powers_are_still_judged(box, truth):
    assert acc(box, truth).acc == 1.0
