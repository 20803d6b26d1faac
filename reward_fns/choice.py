"""Multiple-choice answers: read the chosen letter(s) from a final answer, and match option texts.

math-verify treats a boxed ``B`` as the symbol ``b`` and a boxed ``B. 12`` as the number 12, so letters
need their own reader. Rules (MATH-Vision / MMMU-style grading, made strict against hedging):

* ``B``, ``b``, ``(B)``, ``\\text{B}``, ``B.``, ``B. 12``, ``B) 12``, ``(B) 12``, ``B: 12``, ``Option B`` all
  choose B;
* several distinct letters (``A, B``, ``A or B``, ``A/B``, ``AB``) are a hedge and choose nothing;
* when the answer is not a letter but the prompt had options, the answer may be an option's text
  (``8 kg`` for option B ``$8 \\mathrm{~kg}$``); it then chooses that option's letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reward_fns.normalize import normalize_answer, unwrap

_LETTER = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\s*[.:)]?$")
_LETTER_WITH_TEXT = re.compile(r"^(?:\(\s*([A-Z])\s*\)|([A-Z])\s*[.:)])\s*\S.*$", re.DOTALL)
_LABELLED = re.compile(r"^(?:the\s+)?(?:option|choice|answer)(?:\s+is)?\s*:?\s*\(?\s*([A-Za-z])\s*\)?\s*\.?$", re.IGNORECASE)
# Capital letters only: "a+b" or "x, y" are expressions, "A, B" or "A+B" name two options.
_HEDGE = re.compile(r"^\(?\s*[A-Z]\s*\)?(?:\s*(?:,|;|/|&|\+|(?i:\bor\b|\band\b))\s*\(?\s*[A-Z]\s*\)?)+\.?$")
_RUN_OF_CAPITALS = re.compile(r"^[A-H]{2,8}$")
_OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MATH_TEXT = re.compile(r"[\\^_{}0-9+\-*/=()]")


@dataclass(frozen=True)
class ChoiceReading:
    """What a final answer says about the choice.

    Attributes:
        letters: the distinct capital letters it names (empty when it is not a letter answer).
        hedge: True when it names several letters.
    """

    letters: frozenset[str]
    hedge: bool = False


def is_choice_letter(ground_truth: str) -> bool:
    """True when a ground truth is a single option letter (``"B"``, also ``"(B)"``)."""
    return bool(re.fullmatch(r"\(?\s*[A-Z]\s*\)?", ground_truth.strip()))


def choice_letter(ground_truth: str) -> str:
    """The bare letter of a letter ground truth (``"(B)"`` -> ``"B"``). Raises ValueError otherwise."""
    m = re.fullmatch(r"\(?\s*([A-Z])\s*\)?", ground_truth.strip())
    if not m:
        raise ValueError(f"not an option letter: {ground_truth!r}")
    return m.group(1)


def read_letters(answer: str) -> ChoiceReading:
    """Read the option letter(s) a final answer names.

    Args:
        answer: the content of the last ``\\boxed{}`` (or the ``<answer>`` block).

    Returns:
        :class:`ChoiceReading`; ``letters`` is empty when the answer is not written as a letter.

    Example:
        >>> sorted(read_letters(r"\\text{(B)}").letters)
        ['B']
        >>> read_letters("A or C").hedge
        True
    """
    s = unwrap(answer)
    for pattern in (_LETTER, _LABELLED):
        m = pattern.match(s)
        if m:
            return ChoiceReading(frozenset({m.group(1).upper()}))
    if _HEDGE.match(s) or _RUN_OF_CAPITALS.match(s):
        letters = frozenset(c for c in s if c in _OPTION_LETTERS)
        return ChoiceReading(letters, hedge=len(letters) > 1)
    m = _LETTER_WITH_TEXT.match(s)
    if m:
        return ChoiceReading(frozenset({m.group(1) or m.group(2)}))
    return ChoiceReading(frozenset())


def options_are_letters(options: list[str]) -> bool:
    """True when the options are only their own labels (``["A", "B", ...]``): the figure holds the choices."""
    return all(re.fullmatch(r"\(?\s*[A-Z]\s*\)?", unwrap(o)) for o in options)


def text_key(s: str) -> str:
    """Comparison key for option texts: normalised, lower-case, without spaces or LaTeX spacing."""
    norm = normalize_answer(s).text
    return re.sub(r"\s+|\\,|~", "", norm).lower()


def looks_mathematical(s: str) -> bool:
    """True when a text has LaTeX, digits or operators (``a+b``), i.e. a symbolic comparison could find an
    equivalence; plain words (``Saturday``, ``another number``) are compared as text only."""
    return bool(_MATH_TEXT.search(s))
