"""Score a file of responses with a verl reward function, loaded exactly as verl's trainer loads it.

Input rows (JSONL or parquet) need ``response`` and a ground truth, either ``ground_truth`` or verl's
``reward_model.ground_truth``; optional ``data_source``, ``options`` or ``extra_info`` (a dict; its
``options`` are used for multiple choice). Every input row ends up either in the scored output or in the
rejects file with its row number, field and reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data_prep.records import read_jsonl_lines


@dataclass(frozen=True)
class UnreadableLine:
    """A JSONL line that is not a JSON object (not UTF-8, bad JSON, a list...): scored as a reject, never raised."""

    line: int
    reason: str


def read_rows(path: Path) -> list[dict | UnreadableLine]:
    """Rows of a ``.jsonl`` or ``.parquet`` file as dicts, in file order.

    A JSONL line that cannot be read becomes an :class:`UnreadableLine` (1-based line number and reason) in its
    place, so :func:`score_rows` rejects it and ``read == scored + rejected`` still counts every non-blank line.
    """
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_dict(orient="records")
    return [item.record if item.record is not None else UnreadableLine(item.line, item.error or "unreadable")
            for item in read_jsonl_lines(path)]


@dataclass
class ScoreReport:
    """Counts of a scoring run: ``read == scored + rejected``."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    means: dict[str, float] = field(default_factory=dict)


def _ground_truth(row: dict):
    if row.get("ground_truth") is not None:
        return row["ground_truth"]
    reward_model = row.get("reward_model")
    return reward_model.get("ground_truth") if isinstance(reward_model, dict) else None


def score_rows(rows: Iterable[dict], reward_fn, source: str = "<input>") -> tuple[list[dict], list[dict], ScoreReport]:
    """Score rows; return (scored rows with the reward's keys added, rejects, report).

    A row without a string ``response`` or without a ground truth is rejected with
    ``{"file", "row", "field", "reason"}``; an :class:`UnreadableLine` with ``{"file", "row", "line", "field":
    None, "reason"}``. The reward function itself never raises on bad responses.
    """
    scored, rejects, report = [], [], ScoreReport()
    start = time.perf_counter()
    for index, row in enumerate(rows):
        report.read += 1
        if isinstance(row, UnreadableLine):
            rejects.append({"file": source, "row": index, "line": row.line, "field": None, "reason": row.reason})
            continue
        truth = _ground_truth(row)
        if not isinstance(row.get("response"), str):
            rejects.append({"file": source, "row": index, "field": "response", "reason": "missing or not a string"})
            continue
        if truth is None or (isinstance(truth, str) and not truth.strip()):
            rejects.append({"file": source, "row": index, "field": "ground_truth", "reason": "missing or empty"})
            continue
        extra_info = dict(row["extra_info"]) if isinstance(row.get("extra_info"), dict) else {}
        if row.get("options") is not None:
            extra_info.setdefault("options", list(row["options"]))
        result = reward_fn(
            data_source=row.get("data_source", "unknown"), solution_str=row["response"],
            ground_truth=truth, extra_info=extra_info,
        )
        result = result if isinstance(result, dict) else {"score": float(result)}
        scored.append({**row, **{f"reward_{k}": v for k, v in result.items()}})
    report.seconds = time.perf_counter() - start
    report.scored, report.rejected = len(scored), len(rejects)
    for key in ("reward_score", "reward_acc", "reward_format"):
        values = [r[key] for r in scored if isinstance(r.get(key), int | float)]
        if values:
            report.means[key] = sum(values) / len(values)
    return scored, rejects, report


def _benchmark_fields(row: dict) -> dict:
    extra = row.get("extra_info")
    if isinstance(extra, dict) and isinstance(extra.get("vlmeval"), dict):
        return extra["vlmeval"]
    return row


def score_benchmark_rows(
    rows: Iterable[dict], benchmark: str, extract: str = "lenient", source: str = "<input>", judge=None
) -> tuple[list[dict], list[dict], ScoreReport, dict]:
    """Score rows of one benchmark by its own rules (``verl_rise.evaluation``).

    Rows carry the benchmark's VLMEvalKit TSV columns at top level (or in ``extra_info["vlmeval"]``) and the model's
    ``response`` (or VLMEvalKit's ``prediction``). Each scored row gets ``acc``, ``pred``, ``extracted``, ``method``
    and ``extract``; a row without a response or with a field its benchmark cannot parse is rejected with its row
    number, field and reason.

    Args:
        judge: for ``extract="judge"``: ``(endpoint config, cache path)``.

    Returns:
        (scored rows, rejects, report, the benchmark's aggregate metrics or {} when nothing was scored).
    """
    from verl_rise.evaluation import aggregate
    from verl_rise.evaluation.benchmarks import FieldError, check_benchmark, score_row

    key = check_benchmark(benchmark)
    scored, rejects, report = [], [], ScoreReport()
    start = time.perf_counter()
    pending = []
    for index, row in enumerate(rows):
        report.read += 1
        if isinstance(row, UnreadableLine):
            rejects.append({"file": source, "row": index, "line": row.line, "field": None, "reason": row.reason})
            continue
        response = row.get("response", row.get("prediction"))
        if not isinstance(response, str):
            rejects.append({"file": source, "row": index, "field": "response", "reason": "missing or not a string"})
            continue
        pending.append((index, row, response))
    if extract == "judge":
        from verl_rise.evaluation.judge import judge_scores

        if judge is None:
            raise ValueError("extract='judge' needs an endpoint (--judge-endpoint)")
        cfg, cache_path = judge
        results = judge_scores(key, [_benchmark_fields(r) for _, r, _ in pending], [t for _, _, t in pending], cfg,
                               cache_path)
    else:
        results = []
        for index, row, response in pending:
            try:
                results.append(score_row(key, _benchmark_fields(row), response, extract))
            except FieldError as exc:
                results.append(exc)
    for (index, row, _), result in zip(pending, results, strict=True):
        if isinstance(result, Exception):
            named = re.search(r"field '([^']+)'", str(result))
            rejects.append({"file": source, "row": index, "field": named.group(1) if named else "",
                            "reason": str(result)})
            continue
        scored.append({**row, **result})
    rejects.sort(key=lambda r: r["row"])
    report.seconds = time.perf_counter() - start
    report.scored, report.rejected = len(scored), len(rejects)
    metrics: dict = {}
    if scored:
        report.means["acc"] = sum(r["acc"] for r in scored) / len(scored)
        try:
            metrics = aggregate(key, [{**_benchmark_fields(r), "acc": r["acc"]} for r in scored])
        except FieldError as exc:
            metrics = {"error": str(exc)}
    return scored, rejects, report, metrics
