"""The demo's effect targets: what each half of Metis-RISE must do to the two problem families.

Metis-RISE (arXiv 2506.13056, section 2): RL raises what the model solves sometimes and gives no signal where it
never succeeds; SFT on expert trajectories teaches the prompts RL could not, and self-distillation keeps what RL
gained. On the demo's families (:mod:`verl_rise.demo.families`) that reads, on the held-out set's columns of
``report/summary.json`` (:func:`verl_rise.schedule.report.accuracy_summary`) and the sweep's buckets per
data_source:

=========================  =================================================================
after RL                   learnable >= base + 0.30; absent <= 0.05
post-RL sweep              >= 80 % of absent training prompts hard; >= 80 % of learnable ones
                           inconsistent or solved
after SFT (RL + SFT)       absent >= RL + 0.30; learnable >= RL - 0.10
=========================  =================================================================

:func:`check_targets` evaluates them; the demo prints the result, the CI end-to-end test and
``benchmarks/bench_rise_effect.py`` read it.

Example::

    >>> summary = {"accuracy": {"base": {"t/learnable": 0.3, "t/absent": 0.0},
    ...                         "rl": {"t/learnable": 0.7, "t/absent": 0.0},
    ...                         "rise": {"t/learnable": 0.7, "t/absent": 0.5}},
    ...            "buckets_by_data_source": {"verl-rise/demo/learnable": {"inconsistent": 5, "hard": 1},
    ...                                       "verl-rise/demo/absent": {"hard": 6}}}
    >>> all(t.ok for t in check_targets(summary, "t"))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from verl_rise.demo.families import DATA_SOURCES

#: Margins of the targets (issue 11): RL lift, RL ceiling on the absent family, SFT lift, SFT's allowed loss,
#: and the share of training prompts the sweep must put in the expected buckets.
RL_LIFT, ABSENT_AFTER_RL, SFT_LIFT, SFT_KEEP, SWEEP_SHARE = 0.30, 0.05, 0.30, 0.10, 0.80


@dataclass(frozen=True)
class TargetResult:
    """One target: ``name`` (what is compared), the measured ``value``, the ``bound`` it must meet, ``ok``."""

    name: str
    value: Optional[float]
    bound: Optional[float]
    ok: bool

    def line(self) -> str:
        value = "missing" if self.value is None else f"{self.value:.3f}"
        bound = "" if self.bound is None else f" (bound {self.bound:.3f})"
        return f"{'ok  ' if self.ok else 'MISS'} {self.name}: {value}{bound}"


def _acc(summary: dict, model: str, column: str) -> Optional[float]:
    return summary.get("accuracy", {}).get(model, {}).get(column)


def _share(summary: dict, family: str, buckets: tuple[str, ...]) -> Optional[float]:
    counts = summary.get("buckets_by_data_source", {}).get(DATA_SOURCES[family])
    if not counts:
        return None
    total = sum(v for k, v in counts.items() if k != "unseen")
    return sum(counts.get(b, 0) for b in buckets) / total if total else None


def _at_least(name: str, value: Optional[float], bound: Optional[float]) -> TargetResult:
    return TargetResult(name, value, bound, value is not None and bound is not None and value >= bound - 1e-9)


def _at_most(name: str, value: Optional[float], bound: float) -> TargetResult:
    return TargetResult(name, value, bound, value is not None and value <= bound + 1e-9)


def check_targets(summary: dict, held_out: str = "demo_test") -> list[TargetResult]:
    """The six targets (module docstring) on a run's ``report/summary.json``.

    Args:
        summary: the parsed ``summary.json`` (``accuracy`` per model and column, ``buckets_by_data_source``).
        held_out: the held-out set whose ``<set>/learnable`` and ``<set>/absent`` columns are read.

    Returns:
        One :class:`TargetResult` per target, in the table's order; a missing number fails its target.
    """
    col = {f: f"{held_out}/{f}" for f in ("learnable", "absent")}
    base_l, rl_l, rise_l = (_acc(summary, m, col["learnable"]) for m in ("base", "rl", "rise"))
    rl_a, rise_a = (_acc(summary, m, col["absent"]) for m in ("rl", "rise"))

    def plus(x: Optional[float], d: float) -> Optional[float]:
        return None if x is None else x + d

    return [
        _at_least("RL: learnable >= base + 0.30", rl_l, plus(base_l, RL_LIFT)),
        _at_most("RL: absent <= 0.05", rl_a, ABSENT_AFTER_RL),
        _at_least("sweep: share of absent training prompts in hard", _share(summary, "absent", ("hard",)),
                  SWEEP_SHARE),
        _at_least("sweep: share of learnable training prompts inconsistent or solved",
                  _share(summary, "learnable", ("inconsistent", "solved")), SWEEP_SHARE),
        _at_least("SFT: absent >= RL + 0.30", rise_a, plus(rl_a, SFT_LIFT)),
        _at_least("SFT: learnable >= RL - 0.10", rise_l, plus(rl_l, -SFT_KEEP)),
    ]
