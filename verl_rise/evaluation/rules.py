"""Each benchmark's own rule for comparing an extracted answer with its ground truth.

The rules follow the benchmarks' official scorers as VLMEvalKit runs them (github open-compass/VLMEvalKit,
``vlmeval/dataset/utils/{mathvista,mathv,mathverse,wemath,logicvista}.py`` and ``vlmeval/dataset/dynamath.py``) and
MathVista's own ``evaluation/calculate_score.py``; where those hand the comparison to an API judge (MathVerse's
free-form scoring) the RISE reward's math verifier (``reward_fns.accuracy.judge``: math-verify with a hard time
limit) decides equivalence instead. Each rule takes the row's TSV columns and the extracted answer span and returns
``(acc, pred)``: acc in {0, 1} and the normalised prediction (an option letter, a number, ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from reward_fns.accuracy import judge as verify_equivalent
from reward_fns.exact_numbers import parse_number
from reward_fns.normalize import normalize_answer, unwrap
from verl_rise.evaluation.choices import match_option_text, option_letters, read_letter, read_letter_set
from verl_rise.evaluation.extract import last_number
from verl_rise.evaluation.fields import (
    FieldError,
    cell,
    int_cell,
    letter_columns,
    list_cell,
    options_in_text,
    required,
)

Row = Mapping[str, Any]


def number_of(span: str) -> float | None:
    """The number an answer states: the whole normalised span (``x = 1,000 cm`` -> 1000, ``3/4`` -> 0.75), else its
    last number (``about 22.3 meters`` -> 22.3); None when it has none. ``π`` multiplies (``2π`` -> 6.283...)."""
    if not span:
        return None
    norm = normalize_answer(span).text
    pi = re.fullmatch(r"(-?[\d.]*)\s*(?:\\pi|π)", norm)
    if pi:
        coef = pi.group(1)
        try:
            return (float(coef) if coef not in ("", "-") else (-1.0 if coef == "-" else 1.0)) * math.pi
        except ValueError:
            return None
    value = parse_number(norm)
    if value is not None:
        return float(value)
    tail = last_number(span).replace(",", "")
    try:
        return float(tail) if tail else None
    except ValueError:
        return None


def _choice_result(span: str, options: list[str], gold_letter: str, n_options: int = 5) -> tuple[int, str]:
    letter = read_letter(span, options, n_options) or ""
    return int(letter == gold_letter), letter


def nearest_choice(span: str, choices: list[str]) -> str:
    """The letter of the choice with the smallest edit distance to ``span`` (first on ties): MathVista's own
    ``normalize_extracted_answer`` maps every extraction that is not a letter to a choice this way, so even a refusal
    picks an option."""
    from Levenshtein import distance

    distances = [distance(span, choice) for choice in choices]
    return option_letters(len(choices))[distances.index(min(distances))]


# --- MathVista -------------------------------------------------------------------------------------------------


def mathvista(row: Row, span: str) -> tuple[int, str]:
    """MathVista (testmini): ``question_type`` multi_choice or free_form; ``answer_type`` integer, float (rounded to
    ``precision`` decimals on both sides), list, or text.

    multi_choice: the answer names the right option by letter or by its text (``answer`` holds the option text,
    ``answer_option`` the letter when present); an answer naming no option goes to the nearest choice by edit
    distance, as MathVista's scorer does (:func:`nearest_choice`). integer: ``int(float(pred)) == int(answer)`` as
    the official
    ``normalize_extracted_answer`` does. list: the same numbers in the same order.
    """
    qtype = required(row, "question_type")
    answer = required(row, "answer")
    if qtype == "multi_choice":
        choices = list_cell(row, "choices")
        if not choices:
            raise FieldError("field 'choices' is empty for a multi_choice question")
        letters = option_letters(len(choices))
        gold = cell(row, "answer_option")
        if gold is None:
            if answer not in choices:
                raise FieldError(f"answer {answer!r} is not one of the choices")
            gold = letters[choices.index(answer)]
        gold = gold.strip("() ")
        letter = read_letter(span, choices) or nearest_choice(span, choices)
        return int(letter == gold), letter
    atype = cell(row, "answer_type") or "text"
    if atype == "integer":
        value = number_of(span)
        try:
            ok = value is not None and int(value) == int(float(answer))
        except (ValueError, OverflowError):
            ok = False
        return int(ok), "" if value is None else str(int(value)) if math.isfinite(value) else ""
    if atype == "float":
        precision = int_cell(row, "precision", default=2)
        value = number_of(span)
        if value is None or not math.isfinite(value):
            return 0, ""
        pred = round(value, precision)
        return int(pred == round(float(answer), precision)), str(pred)
    if atype == "list":
        gold_nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", answer)]
        pred_nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", span.replace(",", ", "))]
        return int(bool(pred_nums) and pred_nums == gold_nums), str(pred_nums) if pred_nums else ""
    pred = unwrap(span).strip().lower()
    return int(bool(pred) and pred == answer.strip().lower()), pred


# --- MATH-Vision -----------------------------------------------------------------------------------------------


def _mathvision_options(row: Row) -> list[str]:
    for name in ("choices", "options"):
        if row.get(name) is not None:
            opts = list_cell(row, name)
            if opts:
                return opts
    return []


def mathvision(row: Row, span: str) -> tuple[int, str]:
    """MATH-Vision: with options, the answer is an option letter (named by letter or by the option's text, as MATH-V's
    own ``evaluate.py`` also accepts the option's value); without, a free-form answer compared for mathematical
    equivalence (the RISE verifier, where VLMEvalKit uses latex2sympy with a tolerance of 1e-6)."""
    answer = required(row, "answer")
    options = _mathvision_options(row)
    if options and re.fullmatch(r"[A-E]", answer):
        return _choice_result(span, options, answer, n_options=len(options))
    if not span:
        return 0, ""
    return _equivalent(answer, span), span


def _equivalent(answer: str, span: str) -> int:
    if unwrap(span).strip().lower() == unwrap(answer).strip().lower():
        return 1
    return int(verify_equivalent(answer, span).acc == 1.0)


# --- MathVerse -------------------------------------------------------------------------------------------------


def mathverse(row: Row, span: str) -> tuple[int, str]:
    """MathVerse (testmini): multi-choice questions (``question_type`` ``multi-choice``, or a letter answer with a
    ``Choices:`` list in the question) by option letter or option text; free-form answers by mathematical
    equivalence (VLMEvalKit asks an API judge whether the two are "consistent")."""
    answer = required(row, "answer")
    qtype = (cell(row, "question_type") or "").replace("_", "-")
    question = cell(row, "question_for_eval") or cell(row, "question") or ""
    options = options_in_text(question)
    if qtype == "multi-choice" or (not qtype and re.fullmatch(r"[A-F]", answer)):
        return _choice_result(span, options, answer.strip("() "), n_options=max(len(options), 4))
    if not span:
        return 0, ""
    return _equivalent(answer, span), span


# --- DynaMath --------------------------------------------------------------------------------------------------


def dynamath(row: Row, span: str) -> tuple[int, str]:
    """DynaMath: ``answer_type`` ``multiple choice`` (letter), ``float`` (``|pred - answer| <= 0.001``, ``π`` read as a
    factor) or ``free form`` (DynaMath's rule: the answer contains the prediction, case-insensitive; mathematical
    equivalence also counts)."""
    answer = required(row, "answer")
    atype = (required(row, "answer_type")).lower()
    if atype == "multiple choice":
        options = options_in_text(cell(row, "question"))
        return _choice_result(span, options, answer.strip(), n_options=max(len(options), 5))
    if atype == "float":
        value = number_of(span)
        gold = number_of(answer)
        if value is None or gold is None:
            return 0, ""
        return int(abs(value - gold) <= 1e-3), f"{value:.3f}"
    pred = unwrap(span).strip()
    if not pred:
        return 0, ""
    return int(pred.lower() in answer.lower() or bool(_equivalent(answer, pred))), pred


# --- WeMath ----------------------------------------------------------------------------------------------------


def wemath(row: Row, span: str) -> tuple[int, str]:
    """WeMath: one right option letter; options in columns ``A``..``H`` (or a ``Options:`` list in the question)."""
    answer = required(row, "answer").strip("() ")
    options = letter_columns(row) or options_in_text(cell(row, "question"))
    return _choice_result(span, options, answer, n_options=max(len(options), 5))


# --- LogicVista ------------------------------------------------------------------------------------------------


def logicvista(row: Row, span: str) -> tuple[int, str]:
    """LogicVista: the set of chosen letters equals the answer's (``"A, C"``: both and nothing else), as
    VLMEvalKit's comparison of sorted letters."""
    answer = required(row, "answer")
    gold = frozenset(x.strip().upper() for x in re.split(r"[,\s]+", answer) if x.strip())
    if not gold or not all(re.fullmatch(r"[A-J]", g) for g in gold):
        raise FieldError(f"field 'answer' is not option letters: {answer!r}")
    options = options_in_text(cell(row, "question"))
    valid = option_letters(max(len(options), 5, *(ord(g) - 64 for g in gold)))
    letters = read_letter_set(span, valid)
    if not letters and options and len(gold) == 1:
        hit = match_option_text(span, options)
        letters = frozenset({hit}) if hit else letters
    return int(letters == gold), "".join(sorted(letters))


RULES = {
    "mathvista": mathvista,
    "mathvision": mathvision,
    "mathverse": mathverse,
    "dynamath": dynamath,
    "wemath": wemath,
    "logicvista": logicvista,
}


def wants_number(benchmark: str, row: Row) -> bool:
    """True when the row's answer is a number, so lenient extraction may fall back to the last number."""
    if benchmark == "mathvista":
        return cell(row, "answer_type") in ("integer", "float")
    if benchmark == "dynamath":
        return (cell(row, "answer_type") or "").lower() == "float"
    if benchmark in ("mathvision", "mathverse"):
        answer = cell(row, "answer") or ""
        return parse_number(normalize_answer(answer).text) is not None
    return False
