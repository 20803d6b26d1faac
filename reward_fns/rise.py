"""The Metis-RISE reward for verl: weighted accuracy + format, as verl's custom reward function.

Use it from any verl project, without the rest of verl-rise:

    reward.custom_reward_function.path=pkg://reward_fns.rise        # installed (pip install verl-rise)
    reward.custom_reward_function.path=/path/to/reward_fns/rise.py  # by file path (keep the folder whole)
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.acc_weight=0.9      # optional, see compute_score

Source: Metis-RISE (arXiv 2506.13056), RL stage: rule-based reward of accuracy and format; the default
weights 0.9/0.1 follow verl's geo3k example and MM-EUREKA, keeping the score in [0, 1] with accuracy
dominant (a well-formatted wrong answer, 0.1, never outranks a correct one, >= 0.9).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Loaded by file path (verl's load_module uses spec_from_file_location): make the sibling modules
    # importable as the `reward_fns` package from this very folder.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reward_fns.accuracy import score_accuracy  # noqa: E402
from reward_fns.format import format_check  # noqa: E402
from reward_fns.limits import DEFAULT_TIMEOUT_S, MAX_ANSWER_CHARS, MAX_RESPONSE_CHARS  # noqa: E402


def _weight(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"reward_kwargs.{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def compute_score(
    data_source: object,
    solution_str: object,
    ground_truth: object,
    extra_info: dict | None = None,
    *,
    acc_weight: float = 0.9,
    format_weight: float = 0.1,
    allow_answer_without_box: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_response_chars: int = MAX_RESPONSE_CHARS,
    max_answer_chars: int = MAX_ANSWER_CHARS,
    **kwargs: object,
) -> dict:
    """Score one response with the RISE reward (verl's custom reward signature).

    Args:
        data_source: the row's ``data_source`` (not used: one reward for all math sources).
        solution_str: the decoded response, expected as ``<think>...</think><answer>...\\boxed{X}...</answer>``.
        ground_truth: ``reward_model.ground_truth`` of the row: an answer, an option letter, or a list of
            acceptable answers.
        extra_info: the row's ``extra_info``; ``extra_info["options"]`` (option texts, A first) enables
            matching an option's text to its letter.
        acc_weight, format_weight: ``score = acc_weight * acc + format_weight * format``. Defaults keep the
            score in [0, 1] with accuracy dominant. Set through verl's ``reward_kwargs``.
        allow_answer_without_box: judge the ``<answer>`` content when there is no ``\\boxed{}`` (default off).
        timeout_s: hard wall-clock limit for one symbolic verification (seconds).
        max_response_chars, max_answer_chars: input caps (longer inputs score 0 with a reason).
        **kwargs: extra arguments verl passes (e.g. ``reward_router_address``); ignored.

    Returns:
        ``{"score": float, "acc": float, "format": float, "pred": str, "reason": str}``. verl uses ``score``
        as the reward and logs the other keys as ``reward_extra_info`` (``acc`` is what DAPO's
        ``filter_groups.metric=acc`` reads). ``reason`` says why accuracy is 0 (``no_box``, ``timeout``,
        ``unsafe_input``, ...) or ``correct``.

    Raises:
        ValueError: a weight is negative, not finite or not a number (a configuration error, raised at the
            first call so the run stops instead of training on a wrong reward).

    Example:
        >>> r = compute_score("mathvision", "<think>8 days before Thursday.</think><answer>\\\\boxed{A}</answer>", "A")
        >>> (r["score"], r["acc"], r["format"], r["pred"])
        (1.0, 1.0, 1.0, 'A')
    """
    w_acc, w_fmt = _weight("acc_weight", acc_weight), _weight("format_weight", format_weight)
    options = extra_info.get("options") if isinstance(extra_info, dict) else None
    accuracy = score_accuracy(
        solution_str,
        ground_truth,
        options,
        allow_answer_without_box=allow_answer_without_box,
        timeout_s=timeout_s,
        max_response_chars=max_response_chars,
        max_answer_chars=max_answer_chars,
    )
    fmt, _ = format_check(solution_str, max_response_chars)
    return {
        "score": w_acc * accuracy.acc + w_fmt * fmt,
        "acc": accuracy.acc,
        "format": fmt,
        "pred": accuracy.pred,
        "reason": accuracy.reason,
    }
