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

import ast
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
# A factorial of a bracketed group, ``(10^{100})!``, and a binomial coefficient, ``\binom{10^9}{5 \cdot 10^8}``:
# sympy evaluates both exactly when their arguments are numbers, for ever on large ones (measured: both ran into the
# verifier's 5 s limit, reward_cases adversarial-factorial-002/-004).
_GROUP_FACTORIAL = re.compile(r"[)}\]]\s*!")
_BINOMIAL = re.compile(r"\\[dt]?binom\s*(?=\{)")
_NUMERIC_TEXT = re.compile(r"[\d+\-*/().\s]+")
_OPEN_FOR = {")": "(", "}": "{", "]": "["}
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


def _numeric_value(text: str) -> float | None:
    """Value of a purely numeric expression (digits, ``+ - * /``, ``^``, ``\\cdot``, ``\\times``, brackets), as a float
    (``inf`` when it overflows), or None when ``text`` is anything else (a variable, a function, ...)."""
    expr = text.replace("\\cdot", "*").replace("\\times", "*").replace("\\left", "").replace("\\right", "")
    expr = expr.translate(str.maketrans("{}[]", "()()")).replace("^", "**")
    if not expr.strip() or not _NUMERIC_TEXT.fullmatch(expr):
        return None
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = value(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = value(node.left), value(node.right)
            try:
                if isinstance(node.op, ast.Pow):
                    return float("inf") if abs(b) > 1e4 and abs(a) > 1 else float(a) ** b
                return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}.get(type(node.op), a / b if b else a)
            except (OverflowError, ZeroDivisionError):
                return float("inf")
            except (TypeError, ValueError):  # a complex power: not a size that matters here
                return 0.0
        raise ValueError("not numeric")

    try:
        result = value(tree.body)
    except (ValueError, RecursionError):
        return None
    return result if isinstance(result, float) else None


def _bracketed_before(s: str, close: int) -> str | None:
    """The text inside the bracket group that ends at ``s[close]``, or None when unbalanced."""
    opener, depth = _OPEN_FOR[s[close]], 0
    for i in range(close, -1, -1):
        if s[i] == s[close]:
            depth += 1
        elif s[i] == opener:
            depth -= 1
            if depth == 0:
                return s[i + 1 : close]
    return None


def _braced_after(s: str, start: int) -> tuple[str, int] | None:
    """``(text inside, index after)`` of the ``{...}`` group opening at ``s[start]``, or None."""
    depth = 0
    for i in range(start, len(s)):
        depth += {"{": 1, "}": -1}.get(s[i], 0)
        if depth == 0:
            return s[start + 1 : i], i + 1
    return None


def _huge_factorial_of_a_group(s: str) -> bool:
    """A factorial of a bracketed numeric group above :data:`MAX_FACTORIAL_ARG`, or a numeric binomial coefficient
    ``\\binom{n}{k}`` with ``min(k, n - k)`` above it (sympy multiplies that many factors)."""
    for m in _GROUP_FACTORIAL.finditer(s):
        inner = _bracketed_before(s, m.start())
        n = _numeric_value(inner) if inner is not None else None
        if n is not None and n > MAX_FACTORIAL_ARG:
            return True
    for m in _BINOMIAL.finditer(s):
        top = _braced_after(s, m.end())
        bottom = _braced_after(s, top[1]) if top and top[1] < len(s) and s[top[1]] == "{" else None
        if top is None or bottom is None:
            continue
        n, k = _numeric_value(top[0]), _numeric_value(bottom[0])
        if n is not None and k is not None and min(k, n - k) > MAX_FACTORIAL_ARG:
            return True
    return False


def pathological_reason(s: str) -> str | None:
    """Return why ``s`` would make a symbolic verifier blow up, or None.

    Flags numeric power towers (``9^{9^{9}}``, ``2^3^4``, ``9^{-9^{-9}}``; ``e^{x^2}`` is fine), exponents of 10000 or more, factorials of numbers above
    :data:`MAX_FACTORIAL_ARG` (``100000!``, ``(10^{100})!``) and nested factorials (``(5!)!``), binomial coefficients
    ``\\binom{n}{k}`` of numbers with ``min(k, n - k)`` above that bound, digit strings over 400 digits, and brace
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
    if ("!" in s or "binom" in s) and _huge_factorial_of_a_group(s):
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
