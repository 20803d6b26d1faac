"""Format reward: the strict RISE think/answer contract and its anti-hacking rules."""

import pytest

from reward_fns import format_check, format_reward

GOOD = "<think>The bars show 3 and 4, so 3+4=7.</think><answer>The answer is $\\boxed{7}$</answer>"


@pytest.mark.parametrize(
    "response",
    [
        GOOD,
        "  \n" + GOOD + "\n\n",
        "<think>\nstep 1\nstep 2\n</think>\n\n<answer>\\boxed{B}</answer>",
        "<think>x</think><answer>\\boxed{\\frac{1}{2}} and that is final</answer>",
    ],
)
def test_well_formed_responses_score_one(response):
    assert format_check(response) == (1.0, "ok")


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("<think>a</think><think>b</think><answer>\\boxed{1}</answer>", "tag_count:<think>=2"),
        ("<think>a <answer>\\boxed{2}</answer></think><answer>\\boxed{1}</answer>", "tag_count:<answer>=2"),
        ("<think>   </think><answer>\\boxed{1}</answer>", "empty_think"),
        ("<think></think><answer>\\boxed{1}</answer>", "empty_think"),
        ("Sure! <think>a</think><answer>\\boxed{1}</answer>", "text_before_think"),
        ("<think>a</think><answer>\\boxed{1}</answer> so it is 1", "text_after_answer"),
        ("<think>a</think><answer>\\boxed{1}</answer>\\boxed{2}", "text_after_answer"),
        ("<think>a</think> therefore <answer>\\boxed{1}</answer>", "text_between_blocks"),
        ("<think>a \\boxed{1}</think><answer>1</answer>", "no_box_in_answer"),
        ("<think>a</think><answer>\\boxed{}</answer>", "no_box_in_answer"),
        ("<think>a</think><answer>\\boxed{1</answer>", "no_box_in_answer"),
        ("<think>a</think>\\boxed{1}", "tag_count:<answer>=0"),
        ("<think>a<answer>\\boxed{1}</think></answer>", "tag_order"),
        ("<think>a</think><answer>\\boxed{1}", "tag_count:</answer>=0"),
        ("", "tag_count:<think>=0"),
    ],
)
def test_malformed_and_hacking_responses_score_zero(response, reason):
    assert format_check(response) == (0.0, reason)


@pytest.mark.parametrize("bad", [None, 3, b"<think>a</think>", ["<think>"]])
def test_non_string_input_scores_zero(bad):
    assert format_reward(bad) == 0.0


def test_oversized_response_is_rejected_without_scanning():
    assert format_check(GOOD + " " * 200_000) == (0.0, "response_too_long")
