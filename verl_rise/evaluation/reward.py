"""verl validation reward for the six OpenCompass reasoning benchmarks, dispatching on ``data_source``.

    reward.custom_reward_function.path=pkg://verl_rise.evaluation.reward
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.extract=lenient     # or strict (default lenient)

A row whose ``data_source`` is one of the benchmarks (``MathVista_MINI``, ``MathVision``, ``MathVision_MINI``,
``MathVerse_MINI_Vision_Only``, ``DynaMath``, ``WeMath``, ``LogicVista``; see ``verl_rise.evaluation.DATA_SOURCES``)
is scored by that benchmark's own rules from its TSV columns in ``extra_info["vlmeval"]``; every other row by the
RISE reward (``reward_fns.rise.compute_score``). verl logs the returned keys per data_source, so one validation
run reports strict and lenient accuracy side by side; the benchmark-level aggregates (DynaMath worst case, WeMath
scores) are computed from the dumped samples with ``verl_rise.evaluation.aggregate``.

It lives in verl_rise (not reward_fns) because reward_fns depends on nothing of ours (docs/architecture.md); the RISE
reward stays usable without verl-rise, this one needs it installed.
"""

from __future__ import annotations

from reward_fns.format import format_check
from reward_fns.rise import compute_score as rise_compute_score
from verl_rise.evaluation.benchmarks import benchmark_of, score_row


def compute_score(
    data_source: object,
    solution_str: object,
    ground_truth: object,
    extra_info: dict | None = None,
    *,
    extract: str = "lenient",
    **kwargs: object,
) -> dict:
    """Score one response (verl's custom reward signature).

    Args:
        data_source: the row's ``data_source``; selects the benchmark.
        solution_str: the decoded response.
        ground_truth: ``reward_model.ground_truth`` (used by the RISE fallback; benchmarks read their own columns).
        extra_info: the row's ``extra_info``; benchmark rows carry ``extra_info["vlmeval"]`` (their TSV columns).
        extract: ``lenient`` (default) or ``strict``: which extraction gives ``score``/``acc``.
        **kwargs: passed to the RISE reward for other sources (e.g. its weights); verl's own extras are ignored.

    Returns:
        ``{"score", "acc", "acc_strict", "acc_lenient", "format", "pred", "reason"}`` for every row, so that
        verl's per-sample extra info has the same keys across a mixed batch. For other sources ``score``/``acc``/
        ``pred``/``reason`` are the RISE reward's, ``acc_strict`` is its accuracy and ``acc_lenient`` too (the RISE
        reward has no lenient mode).

    Raises:
        ValueError: ``extract`` is not strict/lenient, or a benchmark row lacks ``extra_info["vlmeval"]`` or a field
            its rules need (a data error that must stop validation rather than score 0 silently).
    """
    if extract not in ("strict", "lenient"):
        raise ValueError(f"reward_kwargs.extract must be 'strict' or 'lenient', got {extract!r}")
    benchmark = benchmark_of(data_source)
    if benchmark is None:
        result = rise_compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)
        return {**result, "acc_strict": result["acc"], "acc_lenient": result["acc"]}
    fields = extra_info.get("vlmeval") if isinstance(extra_info, dict) else None
    if not isinstance(fields, dict):
        raise ValueError(f"{data_source} row has no extra_info['vlmeval'] (its benchmark fields); "
                         "convert it with verl-rise's benchmark converters")
    response = solution_str if isinstance(solution_str, str) else ""
    strict = score_row(benchmark, fields, response, "strict")
    lenient = score_row(benchmark, fields, response, "lenient")
    chosen = lenient if extract == "lenient" else strict
    fmt, _ = format_check(response)
    return {
        "score": float(chosen["acc"]),
        "acc": float(chosen["acc"]),
        "acc_strict": float(strict["acc"]),
        "acc_lenient": float(lenient["acc"]),
        "format": fmt,
        "pred": chosen["pred"],
        "reason": "correct" if chosen["acc"] else (chosen["method"] if not chosen["extracted"] else "wrong"),
    }
