"""Adversarial and malformed inputs: every call returns 0 with a reason, quickly, and never raises."""

import os
import time

import pytest

from reward_fns import compute_score, score_accuracy

WRAP = "<think>work</think><answer>\\boxed{{{}}}</answer>"


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


@pytest.mark.parametrize("response", [None, "", 17, object(), b"\\boxed{1}", ["\\boxed{1}"]])
def test_non_string_or_empty_response(response):
    r = compute_score("x", response, "1")
    assert (r["score"], r["acc"], r["format"]) == (0.0, 0.0, 0.0)
    assert r["reason"] in {"invalid_input", "no_box"}


@pytest.mark.parametrize("truth", [None, "", "   ", True, "1" * 5000])
def test_invalid_ground_truth(truth):
    r = compute_score("x", WRAP.format("1"), truth)
    assert r["acc"] == 0.0 and r["reason"] == "invalid_input"


def test_one_megabyte_response_is_capped():
    response = "<think>" + "a" * 1_000_000 + "</think><answer>\\boxed{1}</answer>"
    r, seconds = _timed(compute_score, "x", response, "1")
    assert r["acc"] == 0.0 and r["reason"] == "response_too_long"
    assert seconds < 1.0


def test_one_megabyte_response_can_be_allowed_explicitly():
    response = "<think>" + "a" * 1_000_000 + "</think><answer>\\boxed{1}</answer>"
    r = compute_score("x", response, "1", max_response_chars=2_000_000)
    assert r["acc"] == 1.0


@pytest.mark.parametrize("n", [5_000, 50_000])
def test_thousands_of_unclosed_braces(n):
    response = "<think>x</think><answer>\\boxed{" + "{" * n + "1</answer>"
    r, seconds = _timed(compute_score, "x", response, "1")
    assert r["acc"] == 0.0 and r["reason"] in {"answer_too_long", "unclosed_box"}
    assert seconds < 1.0


def test_last_box_unclosed_does_not_fall_back_to_an_earlier_box():
    r = score_accuracy("\\boxed{1} and finally \\boxed{1", "1")
    assert (r.acc, r.reason) == (0.0, "unclosed_box")


@pytest.mark.parametrize(
    ("box", "reason"),
    [
        ("9^{9^{9^{9}}}", "power_tower"),
        ("2^3^4^5", "power_tower"),
        ("((100!)!)!", "nested_factorial"),
        ("100000!", "huge_factorial"),
        ("(10^{100})!", "huge_factorial"),
        ("\\binom{10^{9}}{5 \\cdot 10^{8}}", "huge_factorial"),
        ("(x+1)^{100000}", "huge_exponent"),
        ("1" * 10_000, "answer_too_long"),
        ("9" * 800, "huge_number"),
        ("\\frac{" * 60 + "1" + "}{2}" * 60, "too_deep"),
    ],
)
def test_blow_up_expressions_are_rejected_before_parsing(box, reason):
    r, seconds = _timed(score_accuracy, WRAP.format(box), "1")
    assert (r.acc, r.reason) == (0.0, reason)
    assert seconds < 0.5


@pytest.mark.parametrize(("box", "truth"), [("(2^3)!", "40320"), ("\\binom{10}{3}", "120"),
                                            ("\\binom{n}{2}", "\\frac{n(n-1)}{2}"), ("(n+1)!", "(n+1)!")])
def test_small_or_symbolic_factorials_and_binomials_are_still_verified(box, truth):
    assert score_accuracy(WRAP.format(box), truth).acc == 1.0


@pytest.mark.parametrize(
    "box",
    [
        "__import__('os').system('touch {marker}')",
        "(lambda: 3)()",
        "exec('import os')",
        "getattr(3, 'real')",
        "os.system('touch {marker}')",
        "`3`",
    ],
)
def test_code_injection_is_never_evaluated(box, tmp_path):
    marker = tmp_path / "pwned"
    r = score_accuracy(WRAP.format(box.format(marker=marker)), "3")
    assert (r.acc, r.reason) == (0.0, "unsafe_input")
    assert not marker.exists()


def test_latex_lambda_is_not_mistaken_for_code():
    r = score_accuracy(WRAP.format("2\\lambda"), "2\\lambda")
    assert r.acc == 1.0


def test_null_bytes_are_invalid():
    r = score_accuracy(WRAP.format("1\x002"), "12")
    assert (r.acc, r.reason) == (0.0, "invalid_input")


def test_expression_that_outlives_the_limit_times_out_and_scores_zero():
    # Passes every screen (exponent below 10000) but makes sympy expand a 9999-degree polynomial.
    r, seconds = _timed(score_accuracy, WRAP.format("(x+1)^{9999}"), "1", timeout_s=1.0)
    assert (r.acc, r.reason) == (0.0, "timeout")
    assert seconds < 1.0 + 60.0  # plus, at most, one verifier start-up
    # The pool recovers: the next symbolic comparison works.
    assert score_accuracy(WRAP.format("\\sqrt{4}"), "2", timeout_s=30).acc == 1.0


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf"), "0.9", None, True])
def test_bad_weights_are_a_configuration_error(weight):
    with pytest.raises(ValueError, match="acc_weight"):
        compute_score("x", WRAP.format("1"), "1", acc_weight=weight)


def test_extra_verl_kwargs_are_ignored():
    r = compute_score("x", WRAP.format("1"), "1", extra_info={"index": 3}, reward_router_address=None, foo=1)
    assert r["score"] == pytest.approx(1.0)


def test_a_timed_out_worker_is_killed_and_reaped():
    from reward_fns.verifier import VerifierPool

    pool = VerifierPool(max_workers=1)
    assert pool.equivalent("1", "1", 30).value is True
    (worker,) = pool._idle
    pid = worker.proc.pid
    assert os.path.exists(f"/proc/{pid}")
    assert pool.equivalent("1", "(x+1)^{9999}", 0.5).reason == "timeout"
    assert not os.path.exists(f"/proc/{pid}")
    assert pool._alive == 0 and not pool._idle
    pool.close()
