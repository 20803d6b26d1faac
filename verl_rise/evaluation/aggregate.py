"""Benchmark-level metrics from per-response scores, as each benchmark reports them.

* plain accuracy (MathVista, MATH-Vision, MathVerse, LogicVista): mean ``acc``;
* DynaMath: average accuracy over all variants, and worst-case accuracy over seed questions (``qid``): a seed
  counts only when all its variants (``varid``) are right (VLMEvalKit ``dynamath.py``). The leaderboard reports
  worst-case;
* WeMath: per problem group (``ID``; ``key`` ``2steps_1``, ``2steps_2``, ``2steps_multi``, ``3steps_1..3``,
  ``3steps_multi``), the four dimensions of VLMEvalKit's ``utils/wemath.py``: IK (insufficient knowledge: a
  sub-problem wrong and the multi-step problem wrong), IG (inadequate generalisation: all sub-problems right, the
  multi-step problem wrong), CM (complete mastery: sub-problems right and the multi-step problem right; strict = all,
  loose = any) and RM (rote memorisation: the multi-step problem right with sub-problems wrong; strict = any wrong,
  loose = all wrong); score = (N - 0.5 IG - RM - IK) / N over the N groups (525 in WeMath's testmini). The
  leaderboard reports the strict score.

Every metric is a fraction in [0, 1].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from verl_rise.evaluation.benchmarks import check_benchmark
from verl_rise.evaluation.fields import FieldError, cell

#: The metric each benchmark contributes to the leaderboard's table.
HEADLINE = {
    "mathvista": "acc",
    "mathvision": "acc",
    "mathverse": "acc",
    "dynamath": "worst_case_acc",
    "wemath": "score_strict",
    "logicvista": "acc",
}


def _acc(row: Mapping[str, Any]) -> int:
    value = row.get("acc")
    if value not in (0, 1, True, False, 0.0, 1.0):
        raise FieldError(f"row has no acc in {{0, 1}}: {value!r}")
    return int(value)


def dynamath_metrics(rows: list[Mapping[str, Any]]) -> dict:
    """``{"n", "acc", "average_acc", "worst_case_acc", "n_questions"}`` from rows with ``qid`` and ``acc``."""
    by_qid: dict[str, bool] = {}
    for i, r in enumerate(rows):
        qid = cell(r, "qid")
        if qid is None:
            raise FieldError(f"dynamath row {i}: field 'qid' is missing")
        by_qid[qid] = by_qid.get(qid, True) and bool(_acc(r))
    average = sum(_acc(r) for r in rows) / len(rows)
    return {"n": len(rows), "acc": average, "average_acc": average,
            "worst_case_acc": sum(by_qid.values()) / len(by_qid), "n_questions": len(by_qid)}


def wemath_metrics(rows: list[Mapping[str, Any]]) -> dict:
    """WeMath's four dimensions and strict/loose scores (see the module docstring) from rows with ``ID``, ``key``
    and ``acc``. Also one/two/three-step accuracies (``s1_acc``: all sub-problems, ``s2_acc``/``s3_acc``: the
    multi-step problems)."""
    groups: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for i, r in enumerate(rows):
        key, gid = cell(r, "key"), cell(r, "ID") or cell(r, "id")
        if key is None or gid is None or "steps_" not in key:
            raise FieldError(f"wemath row {i}: fields 'ID' and 'key' (e.g. '2steps_1') are needed, "
                             f"got {gid!r}, {key!r}")
        steps, part = key.split("steps_", 1)
        groups[(int(steps), gid)][part] = _acc(r)
    counts = dict.fromkeys(("IK", "IG", "CM_strict", "CM_loose", "RM_strict", "RM_loose"), 0)
    sub_accs, multi = {2: [], 3: []}, {2: [], 3: []}
    for (steps, gid), parts in groups.items():
        subs = [parts.get(str(k)) for k in range(1, steps + 1)]
        whole = parts.get("multi")
        if whole is None or any(s is None for s in subs):
            raise FieldError(f"wemath group {gid} ({steps} steps) is incomplete: has {sorted(parts)}")
        sub_accs[steps] += subs
        multi[steps].append(whole)
        all_right, any_right = all(subs), any(subs)
        if whole:
            counts["CM_strict"] += all_right
            counts["CM_loose"] += any_right
            counts["RM_strict"] += not all_right
            counts["RM_loose"] += not any_right
        else:
            counts["IG"] += all_right
            counts["IK"] += not all_right
    n = len(groups)
    out: dict[str, Any] = {"n": len(rows), "n_groups": n, **counts}
    for mode in ("strict", "loose"):
        out[f"score_{mode}"] = (n - 0.5 * counts["IG"] - counts[f"RM_{mode}"] - counts["IK"]) / n
        cm, rm = counts[f"CM_{mode}"], counts[f"RM_{mode}"]
        out[f"CM_{mode}_rate"] = cm / n
        out[f"RM_{mode}_rate"] = rm / (cm + rm) if cm + rm else 0.0
    out["IK_rate"], out["IG_rate"] = counts["IK"] / n, counts["IG"] / n
    all_subs = sub_accs[2] + sub_accs[3]
    out["s1_acc"] = sum(all_subs) / len(all_subs)
    out["s2_acc"] = sum(multi[2]) / len(multi[2]) if multi[2] else 0.0
    out["s3_acc"] = sum(multi[3]) / len(multi[3]) if multi[3] else 0.0
    out["acc"] = sum(_acc(r) for r in rows) / len(rows)
    return out


def aggregate(benchmark: str, scored_rows: Iterable[Mapping[str, Any]]) -> dict:
    """The benchmark's metrics from scored rows (each: the TSV columns plus ``acc`` from ``score_row``).

    Returns:
        a dict of metrics (fractions) with ``n`` and ``headline`` (the value the leaderboard reports,
        :data:`HEADLINE`).

    Raises:
        ValueError: no rows, an unknown benchmark, or rows lacking the grouping fields (:class:`FieldError`).

    Example:
        >>> rows = [{"qid": "1", "acc": 1}, {"qid": "1", "acc": 0}, {"qid": "2", "acc": 1}]
        >>> m = aggregate("dynamath", rows)
        >>> (round(m["average_acc"], 3), m["worst_case_acc"])
        (0.667, 0.5)
    """
    key = check_benchmark(benchmark)
    rows = list(scored_rows)
    if not rows:
        raise ValueError(f"{key}: no scored rows to aggregate")
    if key == "dynamath":
        metrics = dynamath_metrics(rows)
    elif key == "wemath":
        metrics = wemath_metrics(rows)
    else:
        metrics = {"n": len(rows), "acc": sum(_acc(r) for r in rows) / len(rows)}
    metrics["headline"] = metrics[HEADLINE[key]]
    return metrics
