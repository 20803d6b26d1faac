"""Surface normalisation of final answers before comparison.

math-verify (the core verifier) already handles much of LaTeX; this module removes what it misses on
real model outputs and on MATH-Vision-style answers: text wrappers, degree signs (``30°``), units
(``5 cm``), percent signs, thousands separators (``1\\,000``, ``1 000``), a leading ``x =``, and a trailing
period. All functions are pure, linear-time on capped inputs, and never raise on strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Commands whose argument is plain text or a style: unwrap to the argument.
_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|mathnormal"
    r"|operatorname|mbox|hbox|boldsymbol|bm|emph|boxed|fbox)\s*\{([^{}]*)\}"
)
_SPACING = re.compile(r"\\(?:!|;|:|quad|qquad|displaystyle|textstyle|scriptstyle|left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
_DEGREES = re.compile(
    r"(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}"
    r"|\s*\b(?:degrees?|deg)\b\.?)"
)
_PERCENT = re.compile(r"\\?%|\s*\bpercent\b")
_SEP_THOUSANDS = re.compile(r"^([+-]?\d{1,3})((?:(?:,|\{,\}|\\,|\\ |\\;|~|\s)\d{3})+)(\.\d+)?$")
_SEP_CHARS = re.compile(r",|\{,\}|\\,|\\ |\\;|~|\s")
_EQUATION_LHS = re.compile(r"^(?:[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+(?:_\{?[a-zA-Z0-9]+\}?)?|\\angle\s*[A-Za-z]{1,3})\s*=\s*")

# Units that may follow a number. Matched as whole words at the end, optionally squared/cubed.
_UNIT_WORDS = (
    "km|cm|mm|nm|m|kg|mg|g|t|ml|l|s|sec|secs|second|seconds|min|mins|minute|minutes|h|hr|hrs|hour|hours|"
    "day|days|week|weeks|month|months|year|years|kmh|km/h|m/s|mph|kph|ft|feet|foot|in|inch|inches|yd|yards|"
    "mi|miles|mile|unit|units|square units|sq units|sq|cubic units|dollars|dollar|cents|cent|euros|euro|"
    "points|point|pieces|piece|people|persons|times|ways|coins|cubes|cubes|squares|triangles|steps|moves"
)
_UNIT_TAIL = re.compile(
    r"(?<=[\d}.])\s*(?:~|\\,|\\;|\\ )*\s*(?:\\(?:text|mathrm|textrm|mbox)\s*\{\s*~?\s*)?"
    r"(?:" + _UNIT_WORDS + r")\s*\}?\s*(?:\^\s*\{?\s*[23]\s*\}?|²|³)?\.?$",
    re.IGNORECASE,
)
# `21 \text{ jumps}`: a number followed by words in a text wrapper (a count noun or unit). "or"/"and"
# are excluded: `3 \text{ or } 4` is a hedge, not a unit.
_TEXT_NOUN_TAIL = re.compile(
    r"^(?P<num>.*[\d}])\s*(?:~|\\,|\\ |\\;)*\s*\\(?:text|mathrm|textrm|mbox)\s*\{\s*~?\s*"
    r"(?P<words>[A-Za-z][A-Za-z ]*?)\s*\}\s*(?:\^\s*\{?\s*[23]\s*\}?|²|³)?\.?$"
)
_TRAILING_SPACING = re.compile(r"(?:\s|~|\\,|\\;|\\:|\\ |\\!)+$")
_CURRENCY = re.compile(r"^\\?\$|^(?:€|£|¥)|\\\$")


@dataclass(frozen=True)
class NormalizedAnswer:
    """A final answer after normalisation.

    Attributes:
        text: the normalised string (LaTeX kept, wrappers/units/degrees/percent/separators removed).
        percent: True when a percent sign was removed (the value may mean v or v/100).
    """

    text: str
    percent: bool


def unwrap(s: str) -> str:
    """Remove math delimiters, text/style wrappers and spacing commands; collapse whitespace.

    Example:
        >>> unwrap(r"$\\text{(B)}$")
        '(B)'
    """
    s = s.strip()
    for _ in range(3):
        stripped = s
        if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
            s = s.strip("$").strip()
        if s.startswith("\\(") and s.endswith("\\)"):
            s = s[2:-2].strip()
        if s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2].strip()
        if s == stripped:
            break
    # Innermost-first unwrapping; bounded because each pass removes at least one command.
    for _ in range(8):
        new = _WRAPPERS.sub(lambda m: m.group(1), s)
        if new == s:
            break
        s = new
    s = _SPACING.sub(" ", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return " ".join(s.split())


def strip_equation_lhs(s: str) -> str:
    """``x = 3`` -> ``3``; ``\\theta = 30`` -> ``30``. Only a single variable (optionally subscripted) or an
    ``\\angle ABC`` on the left is removed; for chains ``x = 2 + 1 = 3`` the last right-hand side is kept."""
    if "=" not in s or s.count("=") > 3:
        return s
    m = _EQUATION_LHS.match(s)
    if not m:
        return s
    return s.rsplit("=", 1)[1].strip()


def remove_thousands_separators(s: str) -> str:
    """``1,000`` / ``1{,}000`` / ``1\\,000`` / ``1 000`` -> ``1000`` when every group has three digits."""
    m = _SEP_THOUSANDS.match(s)
    if not m:
        return s
    return m.group(1) + _SEP_CHARS.sub("", m.group(2)) + (m.group(3) or "")


def normalize_answer(raw: str) -> NormalizedAnswer:
    """Normalise a final answer for comparison.

    Order matters: wrappers first (so ``\\text{ cm}`` becomes a plain unit), then the equation left-hand
    side, degrees, percent, units, trailing punctuation, and thousands separators last.

    Args:
        raw: box content or ground truth (already capped in length by the caller).

    Returns:
        :class:`NormalizedAnswer`.

    Example:
        >>> normalize_answer(r"x = 1{,}000\\,\\text{cm}^2")
        NormalizedAnswer(text='1000', percent=False)
        >>> normalize_answer(r"50\\%")
        NormalizedAnswer(text='50', percent=True)
    """
    m = _TEXT_NOUN_TAIL.match(raw.strip().strip("$").strip())
    if m and m.group("words").strip().lower() not in {"or", "and", "to"}:
        raw = m.group("num")
    s = unwrap(raw)
    s = strip_equation_lhs(s)
    s = _DEGREES.sub("", s).strip()
    s, n_percent = _PERCENT.subn("", s)
    s = _TRAILING_SPACING.sub("", s).strip()
    s = _CURRENCY.sub("", s).strip()
    for _ in range(2):
        s = _UNIT_TAIL.sub("", s).strip()
    s = _TRAILING_SPACING.sub("", s.rstrip(" .;,")).strip()
    if s.startswith("{") and s.endswith("}") and s.count("{") == 1:
        s = s[1:-1].strip()
    s = remove_thousands_separators(s)
    return NormalizedAnswer(s, n_percent > 0)
