"""Exact parsing of plain numbers and of number collections (sets, tuples, intervals) without sympy.

This is the fast path of the accuracy reward: most GRPO answers on math/visual-reasoning data are plain
numbers, and parsing them exactly with :class:`fractions.Fraction` costs microseconds where a symbolic
parse costs milliseconds. Anything this module does not recognise returns None and goes to math-verify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

#: Longest digit string parsed here; longer ones are left to the guarded slow path (or rejected there).
MAX_DIGITS = 400

_DECIMAL = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?$")
_SLASH = re.compile(r"^([+-]?)\s*(\d+)\s*/\s*(\d+)$")
_FRAC = re.compile(r"^([+-]?)\s*\\frac\s*(?:\{\s*([+-]?\d+(?:\.\d+)?)\s*\}|(\d))\s*(?:\{\s*(\d+(?:\.\d+)?)\s*\}|(\d))$")


def parse_number(s: str) -> Fraction | None:
    """Parse an integer, decimal, ``a/b`` or ``\\frac{a}{b}`` (also ``\\frac12``, signs) exactly.

    Args:
        s: a normalised answer (see :func:`reward_fns.normalize.normalize_answer`).

    Returns:
        The exact value, or None when ``s`` is not such a number (including a zero denominator and more
        than :data:`MAX_DIGITS` digits).

    Example:
        >>> parse_number(r"-\\frac{23}{2}")
        Fraction(-23, 2)
        >>> parse_number("12.50")
        Fraction(25, 2)
    """
    s = s.strip()
    if not s or len(s) > MAX_DIGITS + 20:
        return None
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1].strip()
    if s.startswith("- "):
        s = "-" + s[2:].lstrip()
    m = _DECIMAL.match(s)
    if m:
        sign, whole, frac = m.groups()
        if not whole and not frac:
            return None
        value = Fraction(int(whole or "0"))
        if frac:
            value += Fraction(int(frac), 10 ** len(frac))
        return -value if sign == "-" else value
    m = _SLASH.match(s)
    if m:
        sign, num, den = m.groups()
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return -value if sign == "-" else value
    m = _FRAC.match(s)
    if m:
        sign, num_braced, num_digit, den_braced, den_digit = m.groups()
        den = Fraction(den_braced or den_digit)
        if den == 0:
            return None
        value = Fraction(num_braced or num_digit) / den
        return -value if sign == "-" else value
    return None


@dataclass(frozen=True)
class NumberCollection:
    """A bracketed or bare list of numbers.

    Attributes:
        kind: ``"set"`` for ``\\{...\\}`` and bare comma lists (unordered, as math-verify treats them),
            ``"ordered"`` for ``(...)`` / ``[...]`` / mixed brackets (points, tuples, intervals).
        left, right: the bracket characters for ordered collections ("" for sets).
        values: the numbers, in written order.
    """

    kind: str
    left: str
    right: str
    values: tuple[Fraction, ...]


_SET_BRACES = (("\\{", "\\}"),)
_ORDERED = {"(": ")", "[": "]"}


def _split_numbers(body: str) -> tuple[Fraction, ...] | None:
    parts = [p.strip() for p in body.split(",")]
    if len(parts) < 2:
        return None
    values = []
    for part in parts:
        value = parse_number(part)
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def parse_collection(s: str) -> NumberCollection | None:
    """Parse ``\\{1,2\\}``, ``1, 2, 3``, ``(3,-4)``, ``[1, 2)`` into a :class:`NumberCollection`.

    Returns None for anything else (single numbers, symbolic entries, nested collections, infinity), which
    then goes to math-verify.

    Example:
        >>> parse_collection("[1, 2)").right
        ')'
    """
    s = s.strip()
    for left, right in _SET_BRACES:
        if s.startswith(left) and s.endswith(right):
            values = _split_numbers(s[len(left) : -len(right)])
            return NumberCollection("set", "", "", values) if values else None
    if len(s) >= 2 and s[0] in _ORDERED and s[-1] in (")", "]"):
        body = s[1:-1]
        if any(c in body for c in "()[]{}"):
            return None
        values = _split_numbers(body)
        return NumberCollection("ordered", s[0], s[-1], values) if values else None
    if any(c in s for c in "()[]{}\\"):
        return None
    values = _split_numbers(s)
    return NumberCollection("set", "", "", values) if values else None


def close_but_not_equal(a: Fraction, b: Fraction, rel: float = 1e-4) -> bool:
    """True when ``a != b`` but they agree to ``rel`` relative precision.

    Such pairs are left to math-verify, which compares floats after rounding; deciding them here could
    disagree with it (e.g. ``0.1`` vs ``0.1000001``).
    """
    if a == b:
        return False
    scale = max(abs(a), abs(b), Fraction(1))
    return abs(a - b) <= scale * Fraction(rel)
