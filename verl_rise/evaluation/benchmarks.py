"""The six OpenCompass reasoning benchmarks: keys, data_sources, and per-response scoring.

Benchmark keys and the ``data_source`` each converted row carries are VLMEvalKit's dataset names (the leaderboard's
splits): see :data:`DATA_SOURCES`. A row is the benchmark's VLMEvalKit TSV columns (``extra_info["vlmeval"]`` in our
parquet; top-level fields in a JSONL of responses).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_prep.benchmarks.specs import BENCHMARKS as SPECS
from data_prep.benchmarks.specs import DATA_SOURCES as SPEC_DATA_SOURCES
from verl_rise.evaluation.extract import (
    EXTRACT_MODES,
    JUDGE,
    LENIENT,
    STRICT,
    Extraction,
    extract_lenient,
    extract_strict,
)
from verl_rise.evaluation.fields import FieldError
from verl_rise.evaluation.rules import RULES, wants_number

#: Benchmark keys, in the paper's column order (one home: ``data_prep.benchmarks.specs``, the converters' specs).
BENCHMARKS = tuple(SPECS)

#: data_source -> benchmark key: VLMEvalKit dataset names (the converters' specs) and the training converter's
#: MATH-Vision source (``data_prep/mathvision.py``), which is scored like MathVision.
DATA_SOURCES = {**SPEC_DATA_SOURCES, "MathLLMs/MathVision": "mathvision"}


def benchmark_of(data_source: object) -> str | None:
    """The benchmark key of a ``data_source`` (also accepts the key itself), or None for other sources."""
    if not isinstance(data_source, str):
        return None
    if data_source in DATA_SOURCES:
        return DATA_SOURCES[data_source]
    return data_source if data_source in BENCHMARKS else None


def check_benchmark(benchmark: str) -> str:
    """``benchmark`` itself when it is a key of :data:`BENCHMARKS` (or a known data_source: its key).

    Raises:
        ValueError: unknown benchmark, naming the known ones.
    """
    key = benchmark_of(benchmark)
    if key is None:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    return key


def extract_answer(benchmark: str, row: Mapping[str, Any], response: str, mode: str = LENIENT) -> Extraction:
    """The final answer of ``response`` by ``mode`` (``strict`` or ``lenient``; ``judge`` goes through
    :mod:`verl_rise.evaluation.judge`, which calls back into :func:`score_extracted`)."""
    if mode == STRICT:
        return extract_strict(response)
    if mode == LENIENT:
        return extract_lenient(response, want_number=wants_number(benchmark, row))
    raise ValueError(f"extract mode must be {STRICT!r} or {LENIENT!r} here, got {mode!r}")


def score_extracted(benchmark: str, row: Mapping[str, Any], extraction: Extraction, mode: str) -> dict:
    """Score an already extracted answer with the benchmark's rule (see :func:`score_row` for the result)."""
    key = check_benchmark(benchmark)
    # The rule runs even without an answer, so that a row with unusable fields is reported in every mode.
    acc, pred = RULES[key](row, extraction.text)
    if not extraction.found:
        acc, pred = 0, ""
    return {"acc": int(acc), "pred": pred, "extracted": extraction.text, "method": extraction.method, "extract": mode}


def score_row(benchmark: str, row: Mapping[str, Any], response: str, extract: str = LENIENT) -> dict:
    """Score one response to one benchmark problem by that benchmark's own rules.

    Args:
        benchmark: a key of :data:`BENCHMARKS` (or one of :data:`DATA_SOURCES`).
        row: the problem's VLMEvalKit TSV columns (text, numbers or None; types are parsed here, e.g. precision
            ``"1.0"`` -> 1).
        response: the model's response.
        extract: ``strict`` (the RISE contract: last ``\\boxed{}``) or ``lenient`` (free text, see
            :mod:`verl_rise.evaluation.extract`). ``judge`` needs an endpoint: use
            :func:`verl_rise.evaluation.judge.score_rows_with_judge`.

    Returns:
        ``{"acc": 0|1, "pred": normalised prediction, "extracted": raw answer span, "method": where it was found
        (or why not), "extract": mode}``.

    Raises:
        ValueError: unknown benchmark or extract mode; :class:`FieldError` (a ValueError) when the row lacks a
            field the benchmark needs or a field cannot be parsed.

    Example:
        >>> row = {"question_type": "free_form", "answer_type": "float", "precision": "1.0", "answer": "1.2"}
        >>> score_row("mathvista", row, "So d = 1.22 m. The answer is 1.22 m.")["acc"]
        1
    """
    if extract not in EXTRACT_MODES:
        raise ValueError(f"extract must be one of {', '.join(EXTRACT_MODES)}, got {extract!r}")
    if extract == JUDGE:
        raise ValueError("extract='judge' needs an endpoint: use verl_rise.evaluation.judge.score_rows_with_judge")
    key = check_benchmark(benchmark)
    if not isinstance(response, str):
        response = "" if response is None else str(response)
    return score_extracted(key, row, extract_answer(key, row, response, extract), extract)


__all__ = [
    "BENCHMARKS",
    "DATA_SOURCES",
    "FieldError",
    "benchmark_of",
    "check_benchmark",
    "extract_answer",
    "score_extracted",
    "score_row",
]
