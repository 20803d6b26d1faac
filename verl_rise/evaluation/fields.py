"""Parse a benchmark row's VLMEvalKit TSV columns (text cells) into typed values.

Rows come from TSV files (every cell a string, ``"nan"``/empty for missing), from parquet (``extra_info["vlmeval"]``,
str or None) or from JSONL (any JSON type), so each reader accepts all three forms.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

OPTION_LETTERS = "ABCDEFGHIJ"


class FieldError(ValueError):
    """A row lacks a field its benchmark needs, or the field cannot be parsed (message names the field)."""


def cell(row: Mapping[str, Any], name: str) -> str | None:
    """The column ``name`` as stripped text, None when missing, empty or NaN."""
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text == "" or text.lower() in ("nan", "none") else text


def required(row: Mapping[str, Any], name: str) -> str:
    """Like :func:`cell` but raises :class:`FieldError` when the column is missing."""
    value = cell(row, name)
    if value is None:
        raise FieldError(f"field {name!r} is missing or empty")
    return value


def int_cell(row: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    """An integer column (``"1.0"`` -> 1); ``default`` when missing. Raises FieldError when not a number."""
    value = cell(row, name)
    if value is None:
        return default
    try:
        return int(float(value))
    except ValueError as exc:
        raise FieldError(f"field {name!r} is not a number: {value!r}") from exc


def list_cell(row: Mapping[str, Any], name: str) -> list[str]:
    """A list column: a Python/JSON list literal in text (VLMEvalKit's ``"['3/11', '8/11']"``) or a sequence.

    Returns [] when missing or an empty list. Raises FieldError when the text is not a list literal.
    """
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if hasattr(value, "tolist") or (isinstance(value, Sequence) and not isinstance(value, str | bytes)):
        return [str(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    text = str(value).strip()
    if text in ("", "nan", "None"):
        return []
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise FieldError(f"field {name!r} is not a list literal: {text[:80]!r}") from exc
    if not isinstance(parsed, list | tuple):
        raise FieldError(f"field {name!r} is not a list: {text[:80]!r}")
    return [str(v) for v in parsed]


def letter_columns(row: Mapping[str, Any]) -> list[str]:
    """Options stored one per column ``A``, ``B``, ... (WeMath, MMBench-style TSVs), up to the first missing."""
    options = []
    for letter in OPTION_LETTERS:
        value = cell(row, letter)
        if value is None:
            break
        options.append(value)
    return options


_CHOICES_HEADER = re.compile(r"(?:^|\n)\s*(?:Choices|Options)\s*:?\s*\n?", re.IGNORECASE)
_INLINE_OPTION = re.compile(r"(?:^|\n|\s)\(?([A-H])\s*[:.)]\s*(.+?)(?=(?:\n|\s)\(?[A-H]\s*[:.)]\s|\n|$)")


def options_in_text(question: str | None) -> list[str]:
    """Option texts written into a question (MathVerse's ``Choices:\\nA:2\\nB:2√{3}``, DynaMath's ``A: ...``).

    Only letters that run A, B, C, ... in order count; returns [] when the question has no such list.

    Example:
        >>> options_in_text("Find x.\\nChoices:\\nA:2\\nB:4\\nC:6")
        ['2', '4', '6']
    """
    if not question:
        return []
    header = _CHOICES_HEADER.search(question)
    body = question[header.end():] if header else question
    found: list[str] = []
    for m in _INLINE_OPTION.finditer(body):
        letter, text = m.group(1), m.group(2).strip()
        if letter == OPTION_LETTERS[len(found)]:
            found.append(text.rstrip(" ;,"))
        elif found:
            break
    return found if len(found) >= 2 else []
