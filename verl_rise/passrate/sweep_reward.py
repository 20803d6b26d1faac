"""Reward for the post-RL sweep: the Metis-RISE reward, plus ``prompt_id`` echoed into ``reward_extra_info``.

Why: verl's validation dump (``trainer.validation_data_dir``, trainer_base.py:1226-1260) writes ``input``,
``output``, ``gts``, ``score``, ``step``, ``uid`` and every key the reward function returns, but not the dataset
row's ``extra_info``; ``uid`` is a fresh uuid per draw (trainer_base.py:1050-1052). Returning ``prompt_id`` from
the reward puts the stable id on every dump line, so :mod:`verl_rise.passrate.dumps` can join the sweep's
responses to the dataset rows without matching decoded prompt text. A string-valued extra key is safe in
validation: verl's metric code skips string columns (``process_validation_metrics``, metric_utils.py:1007).

verl config::

    reward.custom_reward_function.path=pkg://verl_rise.passrate.sweep_reward
    reward.custom_reward_function.name=compute_score
"""

from __future__ import annotations

import functools
from typing import Any, Callable

PROMPT_ID_KEY = "prompt_id"


def echo_prompt_id(fn: Callable[..., Any], key: str = PROMPT_ID_KEY) -> Callable[..., dict]:
    """Wrap a verl reward function so its result also carries ``extra_info[key]`` as ``key``.

    Args:
        fn: ``fn(data_source, solution_str, ground_truth, extra_info=None, **kwargs)`` returning a dict with
            ``score`` (and ``acc``) or a float (then ``{"score": r, "acc": r}``, as verl's naive reward manager
            logs a float reward, naive.py:93-95).
        key: the prompt-id key in ``extra_info`` (data_prep writes ``prompt_id``).

    Returns:
        A reward function with the same signature returning a dict.

    Raises:
        ValueError: when called with an ``extra_info`` lacking ``key`` (the dataset was not built by data_prep).
    """

    @functools.wraps(fn)
    def wrapped(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
        prompt_id = (extra_info or {}).get(key)
        if not isinstance(prompt_id, str) or not prompt_id:
            raise ValueError(
                f"sweep reward: extra_info has no {key!r} (data_source={data_source!r}); "
                "build the parquet with data_prep, which writes extra_info.prompt_id"
            )
        result = fn(data_source, solution_str, ground_truth, extra_info=extra_info, **kwargs)
        if not isinstance(result, dict):
            result = {"score": float(result), "acc": float(result)}
        return {**result, key: prompt_id}

    return wrapped


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    """The RISE reward (``reward_fns.compute_score``) with ``prompt_id`` added; see :func:`echo_prompt_id`."""
    from reward_fns import compute_score as rise_compute_score

    return echo_prompt_id(rise_compute_score)(data_source, solution_str, ground_truth, extra_info, **kwargs)
