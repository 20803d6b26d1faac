"""Screens run before any symbolic parser sees an answer.

Two dangers, both seen in RL runs that verify model outputs with sympy-based tools:

* code execution: math-verify's plain-expression parser ends in sympy's ``parse_expr``, which evaluates
  Python; ``\\boxed{(lambda: 3)()}`` really evaluates to 3 there (measured with math-verify 0.9.0).
* blow-ups: power towers, factorial towers and huge exponents make sympy evaluate numbers with millions of
  digits or expand enormous polynomials; a policy that stumbles on one repeats it across a whole group.

The symbolic verifier also runs in a killable subprocess with a memory limit (:mod:`reward_fns.verifier`);
these screens make the common attacks cost microseconds instead of a timeout.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    r"__|`|(?<!\\)\b(?:lambda|import|exec|eval|compile|open|getattr|setattr|delattr|globals|locals|vars|"
    r"breakpoint|input|subprocess|builtins)\b|(?<![a-zA-Z\\])(?:os|sys)\s*\.",
)
# Signs are allowed at each level: 99^{-99^{-99^{-99}}} is as slow for sympy as an unsigned tower.
_POWER_TOWER = re.compile(
    r"\^\s*\{\s*[-+]?\s*\(?\s*[-+]?\s*\d[\d.]*\s*\)?\s*\^|\^\s*\(?\s*[-+]?\s*\d[\d.]*\s*\)?\s*\^"
    r"|\*\*\s*\(?\s*[-+]?\s*\d+\s*\)?\s*\*\*"
)
_BIG_EXPONENT = re.compile(r"(?:\^|\*\*)\s*\{?\s*\(?\s*(\d{5,})")
_FACTORIAL_OF = re.compile(r"(\d+)\s*!")
_NESTED_FACTORIAL = re.compile(r"!\s*\)*\s*!")
_DIGIT_RUN = re.compile(r"\d{401,}")
# math-verify reads `\min_{x=0}^{2} (x+3)` as 0 (the subscript's value), so such an answer would earn
# credit for any number written in its subscript. \lim is rewritten to `\to` instead (reward_fns.normalize).
_MISREAD_OPERATOR = re.compile(r"\\(?:min|max|sup|inf|argmin|argmax|arg\s*min|arg\s*max)\s*_\s*\{[^{}]*=")

#: Largest integer whose factorial is allowed (1000! has 2568 digits: cheap for sympy).
MAX_FACTORIAL_ARG = 1000
#: Deepest brace nesting allowed.
MAX_NESTING = 40


def unsafe_reason(s: str) -> str | None:
    """Return ``"unsafe_input"`` when ``s`` contains Python-evaluation constructs, else None.

    LaTeX commands such as ``\\lambda`` are not flagged (the backslash is required before the word).

    Example:
        >>> unsafe_reason(r"\\lambda + 1") is None
        True
        >>> unsafe_reason("(lambda: 3)()")
        'unsafe_input'
    """
    return "unsafe_input" if _UNSAFE.search(s) else None


def _nesting_depth(s: str) -> int:
    depth = best = 0
    for ch in s:
        if ch in "{([":
            depth += 1
            best = max(best, depth)
        elif ch in "})]":
            depth -= 1
    return best


def pathological_reason(s: str) -> str | None:
    """Return why ``s`` would make a symbolic verifier blow up, or None.

    Flags numeric power towers (``9^{9^{9}}``, ``2^3^4``, ``9^{-9^{-9}}``; ``e^{x^2}`` is fine), exponents of 10000 or more, factorials of numbers above
    :data:`MAX_FACTORIAL_ARG` and nested factorials (``(5!)!``), digit strings over 400 digits, and brace
    nesting deeper than :data:`MAX_NESTING`.

    Also flags ``\\min``/``\\max``/``\\sup``/``\\inf`` with an ``=`` in the subscript, which math-verify
    misreads as the subscript's value (``unsupported_operator``).

    Returns:
        One of ``"power_tower"``, ``"huge_exponent"``, ``"huge_factorial"``, ``"nested_factorial"``,
        ``"huge_number"``, ``"too_deep"``, ``"unsupported_operator"``, or None.
    """
    if _DIGIT_RUN.search(s):
        return "huge_number"
    if _POWER_TOWER.search(s):
        return "power_tower"
    if _BIG_EXPONENT.search(s):
        return "huge_exponent"
    if "!" in s:
        if _NESTED_FACTORIAL.search(s):
            return "nested_factorial"
        for m in _FACTORIAL_OF.finditer(s):
            if int(m.group(1)) > MAX_FACTORIAL_ARG:
                return "huge_factorial"
    if _nesting_depth(s) > MAX_NESTING:
        return "too_deep"
    if "=" in s and _MISREAD_OPERATOR.search(s):
        return "unsupported_operator"
    return None


def screen(s: str) -> str | None:
    """First failing screen's reason for ``s`` (see :func:`unsafe_reason`, :func:`pathological_reason`)."""
    if "\x00" in s:
        return "invalid_input"
    return unsafe_reason(s) or pathological_reason(s)
