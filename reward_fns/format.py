"""Format reward for the Metis-RISE output contract: ``<think>...</think><answer>... \\boxed{...} ...</answer>``.

Source: the released Metis-RISE system prompt ("The reasoning process and answer are enclosed within
<think> </think> and <answer> </answer> tags ... output should start with <think> and end with </answer>",
github MM-Thinking/Metis-RISE) and the format reward of MM-EUREKA / verl's geo3k example, made strict so it
cannot be gamed: one block of each, nothing nested, nothing outside.
"""

from __future__ import annotations

from reward_fns.extract import has_complete_box
from reward_fns.limits import MAX_RESPONSE_CHARS

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def format_check(solution_str: object, max_response_chars: int = MAX_RESPONSE_CHARS) -> tuple[float, str]:
    """Score the output format and say why.

    1.0 only when all of these hold (leading/trailing whitespace ignored):
      * the response starts with ``<think>`` and ends with ``</answer>``;
      * each of ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` occurs exactly once, in that order
        (so no tag sits inside another block and no second think/answer block exists);
      * the think block holds non-whitespace text;
      * only whitespace separates ``</think>`` from ``<answer>``;
      * the answer block contains a complete, non-empty ``\\boxed{...}`` (whether the *last* box is
        usable is the accuracy reward's business, not the format's).

    Args:
        solution_str: the decoded response (verl passes it without special tokens). Non-strings score 0.
        max_response_chars: longer responses score 0 without being scanned further.

    Returns:
        ``(score, reason)`` with score 1.0 or 0.0; reason is ``"ok"`` or what failed, e.g.
        ``"tag_count:<think>=2"``, ``"empty_think"``, ``"text_after_answer"``, ``"no_box_in_answer"``.

    Example:
        >>> format_check("<think>1+1=2</think><answer>$\\\\boxed{2}$</answer>")
        (1.0, 'ok')
        >>> format_check("<think></think><answer>\\\\boxed{2}</answer>")[1]
        'empty_think'
    """
    if not isinstance(solution_str, str):
        return 0.0, "invalid_input"
    if len(solution_str) > max_response_chars:
        return 0.0, "response_too_long"
    text = solution_str.strip()
    for tag in _TAGS:
        count = text.count(tag)
        if count != 1:
            return 0.0, f"tag_count:{tag}={count}"
    if not text.startswith("<think>"):
        return 0.0, "text_before_think"
    if not text.endswith("</answer>"):
        return 0.0, "text_after_answer"
    think_end = text.index("</think>")
    answer_start = text.index("<answer>")
    if answer_start < think_end:
        return 0.0, "tag_order"
    if not text[len("<think>") : think_end].strip():
        return 0.0, "empty_think"
    if text[think_end + len("</think>") : answer_start].strip():
        return 0.0, "text_between_blocks"
    answer = text[answer_start + len("<answer>") : -len("</answer>")]
    if not has_complete_box(answer):
        return 0.0, "no_box_in_answer"
    return 1.0, "ok"


def format_reward(solution_str: object, **kwargs: object) -> float:
    """1.0 when ``solution_str`` follows the RISE format (see :func:`format_check`), else 0.0. Never raises."""
    return format_check(solution_str)[0]
