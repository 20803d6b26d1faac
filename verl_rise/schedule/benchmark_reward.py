"""Reward of the eval stage's benchmark runs: the benchmark reward, plus each row's id echoed into verl's dumps.

verl's validation dump writes every key the reward returns but not the dataset row's ``extra_info``
(see :mod:`verl_rise.passrate.sweep_reward`), and its validation loader shuffles by default. The benchmark
metrics that group rows (DynaMath's worst case over a seed question's variants, WeMath's problem groups) need each
response joined to its row's benchmark fields, so this reward adds ``row_key`` = ``"<benchmark>:<TSV index>"``
(``extra_info["benchmark"]`` and ``extra_info["index"]``, written by ``data_prep.benchmarks``; unique within a
benchmark, unlike the content-hash prompt id, which identical sub-problems share). Everything else is the
benchmark reward's result (:data:`verl_rise.verl_commands.BENCHMARK_REWARD`: ``acc_strict``, ``acc_lenient``, ...).

verl config::

    reward.custom_reward_function.path=pkg://verl_rise.schedule.benchmark_reward
    reward.custom_reward_function.name=compute_score
"""

from __future__ import annotations

import functools
import importlib

from verl_rise.verl_commands import BENCHMARK_REWARD

ROW_KEY = "row_key"


def row_key(benchmark: object, index: object) -> str:
    """``"<benchmark>:<index>"``, the id the eval stage joins dumps to benchmark rows by."""
    return f"{benchmark}:{int(index)}"


@functools.lru_cache(maxsize=1)
def _benchmark_reward():
    path, name = BENCHMARK_REWARD
    return getattr(importlib.import_module(path.removeprefix("pkg://")), name)


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    """The benchmark reward's result plus ``row_key`` (verl's custom reward signature).

    Raises:
        ValueError: ``extra_info`` lacks ``benchmark`` or ``index`` (the parquet was not written by
            ``data_prep.benchmarks``).
    """
    info = extra_info if isinstance(extra_info, dict) else {}
    if info.get("benchmark") is None or info.get("index") is None:
        raise ValueError(f"benchmark reward: extra_info has no 'benchmark'/'index' (data_source={data_source!r}); "
                         "convert the benchmark with data_prep.benchmarks")
    result = _benchmark_reward()(data_source, solution_str, ground_truth, extra_info, **kwargs)
    return {**result, ROW_KEY: row_key(info["benchmark"], info["index"])}
