"""Surface normalisation of final answers before comparison.

math-verify (the core verifier) already handles much of LaTeX; this module removes what it misses on
real model outputs and on MATH-Vision-style answers: text wrappers, degree signs (``30°``), units
(``5 cm``), percent signs, thousands separators (``1\\,000``, ``1 000``), a leading ``x =``, and a trailing
period. All functions are pure, linear-time on capped inputs, and never raise on strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# Commands whose argument is plain text or a style: unwrap to the argument.
_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|mathnormal"
    r"|operatorname|mbox|hbox|boldsymbol|bm|emph|boxed|fbox)\s*\{([^{}]*)\}"
)
_NEG_SPACE = re.compile(r"\\!")
_SPACING = re.compile(r"\\(?:;|:|quad|qquad|displaystyle|textstyle|scriptstyle|left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
_DEGREES = re.compile(
    r"(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}"
    r"|\s*\b(?:degrees?|deg)\b\.?)"
)
_PERCENT = re.compile(r"\\?%|\s*\b(?:percentage|percent|per\s?cent|pct)\b\.?")
_SEP_THOUSANDS = re.compile(r"^([+-]?\d{1,3})((?:(?:,|\{,\}|\\,|\\ |\\;|~|\s)\d{3})+)(\.\d+)?$")
_SEP_CHARS = re.compile(r",|\{,\}|\\,|\\ |\\;|~|\s")
# Greek letters may name an unknown (`\theta = 30`); other commands (`\sum`, `\max`, `\lim`, `\int`, ...) are
# operators whose subscripts hold `=` (`\sum_{k=1}^{3} k`) and are never an equation's left side.
_GREEK = (
    "alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|pi|varpi|rho"
    "|varrho|sigma|varsigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Pi|Sigma|Upsilon"
    "|Phi|Psi|Omega|ell"
)
_NAME = r"(?:[a-zA-Z]|\\(?:" + _GREEK + r")(?![a-zA-Z]))(?:\s*_\s*(?:\{\s*[a-zA-Z0-9]+\s*\}|[a-zA-Z0-9]))?"
_EQUATION_LHS = re.compile(r"(?:" + _NAME + r"|\\angle\s*[A-Za-z]{1,3})")
_LIST_WORDS = re.compile(r"\s(?:and|or)\s")
_IN_SET = re.compile(r"^[a-zA-Z]\s*\\in(?![a-zA-Z])\s*(.+)$")
_LESS = r"(?:<|\\lt(?![a-zA-Z])|\\leq?(?:slant)?(?![a-zA-Z]))"
_GREATER = r"(?:>|\\gt(?![a-zA-Z])|\\geq?(?:slant)?(?![a-zA-Z]))"
_CHAINS = (
    (re.compile(r"^(?P<lo>.+?)\s*(?P<a>" + _LESS + r")\s*[a-zA-Z]\s*(?P<b>" + _LESS + r")\s*(?P<hi>.+)$"), False),
    (re.compile(r"^(?P<hi>.+?)\s*(?P<b>" + _GREATER + r")\s*[a-zA-Z]\s*(?P<a>" + _GREATER + r")\s*(?P<lo>.+)$"), True),
)
# `\lim_{x=0}` means `\lim_{x \to 0}`; math-verify reads the former as the subscript's value (0).
_LIM_EQUALS = re.compile(r"(\\lim\s*_\s*\{[^{}=]*?)=")
# `\int_{x=0}^{1}`: the variable is named by `dx`; math-verify reads `x=0` as the value 0.
_INT_VARIABLE = re.compile(r"(\\int\s*_\s*\{)\s*[a-zA-Z]\s*=")
_RELATION = re.compile(r"[<>=]|\\(?:le|ge|lt|gt|ne|neq|leq|geq)(?![a-zA-Z])")

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
    r"^(?P<num>.*[\d}])\s*(?:~|\\,|\\ |\\;)*\s*"
    r"\\(?:text|mathrm|textrm|mbox|textbf|mathbf|textit|mathit|textsf|mathsf|textnormal|boldsymbol|bm)\s*\{\s*~?\s*"
    r"(?P<words>[A-Za-z][A-Za-z ]*?)\s*\}\s*(?:\^\s*\{?\s*[23]\s*\}?|²|³)?\.?$"
)
_TRAILING_SPACING = re.compile(r"(?:\s|~|\\,|\\;|\\:|\\ |\\!)+$")
_CURRENCY = re.compile(r"^(?:\\?\$|€|£|¥|₹|₩|₽|US\\?\$|(?:USD|EUR|GBP|INR|JPY|CNY|RMB|Rs\.?)(?![A-Za-z]))\s*|\\\$")
_CURRENCY_AFTER = re.compile(r"\s*(?:€|£|¥|₹|₩|₽|(?<![A-Za-z])(?:USD|EUR|GBP|INR|JPY|CNY|RMB))$")


# Unicode math as models and datasets write it, in the LaTeX math-verify reads.
_VULGAR = {
    "½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5), "⅗": (3, 5),
    "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅐": (1, 7), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8),
    "⅑": (1, 9), "⅒": (1, 10),
}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎", "0123456789+-=()")
_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ]+")
_SUBSCRIPT_RUN = re.compile("[₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎]+")
_ROOT = re.compile(r"([√∛∜])\s*(\([^()]*\)|\{[^{}]*\}|\d+(?:\.\d+)?|[A-Za-z]|\\[a-zA-Z]+)")
_SYMBOLS = {
    "−": "-", "⁄": "/", "∕": "/", "×": "\\times ", "÷": "\\div ", "·": "\\cdot ", "⋅": "\\cdot ", "π": "\\pi ",
    "∞": "\\infty ", "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "±": "\\pm ", "∈": "\\in ", "∪": "\\cup ",
    "∩": "\\cap ", "θ": "\\theta ", "α": "\\alpha ", "β": "\\beta ", "∠": "\\angle ",
}
_SYMBOL = re.compile("|".join(map(re.escape, _SYMBOLS)))


def unicode_math(s: str) -> str:
    """Write Unicode math in LaTeX: ``½`` -> ``\\frac{1}{2}``, ``2²`` -> ``2^{2}``, ``1⁄2`` -> ``1/2``,
    ``√2`` -> ``\\sqrt{2}``, ``x₁`` -> ``x_{1}``, ``−3`` -> ``-3``, ``≤`` -> ``\\le``. ASCII input is returned as is.

    Example:
        >>> unicode_math("1½ + √2 + x²")
        '(1+\\\\frac{1}{2}) + \\\\sqrt{2} + x^{2}'
    """
    if s.isascii():
        return s
    for ch, (num, den) in _VULGAR.items():
        if ch in s:
            # A digit before it makes a mixed number (1½ = 3/2), not a product.
            s = re.sub(r"(\d+)\s*" + ch, lambda m, n=num, d=den: f"({m.group(1)}+\\frac{{{n}}}{{{d}}})", s)
            s = s.replace(ch, f"\\frac{{{num}}}{{{den}}}")
    s = _SUPERSCRIPT_RUN.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPTS) + "}", s)
    s = _SUBSCRIPT_RUN.sub(lambda m: "_{" + m.group(0).translate(_SUBSCRIPTS) + "}", s)
    s = _SYMBOL.sub(lambda m: _SYMBOLS[m.group(0)], s)

    def root(m: re.Match) -> str:
        arg = m.group(2)
        if arg[0] == "{":
            arg = arg[1:-1]
        index = {"√": "", "∛": "[3]", "∜": "[4]"}[m.group(1)]
        return f"\\sqrt{index}{{{arg}}}"

    s = _ROOT.sub(root, s)
    return s.replace("  ", " ").strip()


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
    s = _NEG_SPACE.sub("", s)
    s = _SPACING.sub(" ", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return " ".join(s.split())


def top_level_positions(s: str, chars: str) -> list[int]:
    r"""Indices of the characters in ``chars`` that lie outside every bracket group of ``s``.

    Groups are ``{}``, ``()``, ``[]`` and ``\{ \}`` (mixed pairs count, so intervals such as ``[1, 2)`` work);
    other escaped characters (``\,``, ``\;``) are skipped, so LaTeX spacing is never a separator.

    Example:
        >>> top_level_positions(r"\sum_{k=1}^{3} k = 6", "=")
        [17]
    """
    depth, out, i, n = 0, [], 0, len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            if i + 1 < n and s[i + 1] in "{}":
                depth = depth + 1 if s[i + 1] == "{" else max(0, depth - 1)
            i += 2
            continue
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth = max(0, depth - 1)
        elif depth == 0 and ch in chars:
            out.append(i)
        i += 1
    return out


def strip_equation_lhs(s: str) -> str:
    """``x = 3`` -> ``3``; ``\\theta = 30`` -> ``30``; ``x = 2 + 1 = 3`` -> ``3`` (the last right-hand side).

    Only a single variable (optionally subscripted, a Greek letter allowed) or an ``\\angle ABC`` on the left is
    removed, and only at an ``=`` outside every bracket group: ``\\sum_{k=1}^{3} k`` and ``\\max_{x=1} x`` are
    expressions, not equations. Several equations in a list (``x = 1, y = 2``) are left whole (see
    :func:`named_values`): keeping the last value would credit a hedge.
    """
    if "=" not in s:
        return s
    eqs = top_level_positions(s, "=")
    if not eqs or len(eqs) > 3:
        return s
    if len(eqs) > 1 and (top_level_positions(s, ",;") or _LIST_WORDS.search(s)):
        return s
    if not _EQUATION_LHS.fullmatch(s[: eqs[0]].strip()):
        return s
    return s[eqs[-1] + 1 :].strip()


def _name_key(name: str) -> str:
    return re.sub(r"[\s{}]", "", name)


def named_values(s: str) -> list[tuple[str, str]] | None:
    """``a_3 = 2, a_{37} = 19`` -> ``[("a_3", "2"), ("a_37", "19")]``: two or more distinct named values
    separated by commas, semicolons or "and"; None for anything else. Names are keyed without braces/spaces."""
    if "=" not in s:
        return None
    cuts = top_level_positions(s, ",;")
    parts = [s[a + 1 : b] for a, b in zip([-1, *cuts], [*cuts, len(s)], strict=True)]
    parts = [q for p in parts for q in re.split(r"\s+and\s+", p)]
    if len(parts) < 2:
        return None
    out = []
    for part in parts:
        eqs = top_level_positions(part, "=")
        if len(eqs) != 1:
            return None
        name, value = part[: eqs[0]].strip(), part[eqs[0] + 1 :].strip()
        if not value or not re.fullmatch(_NAME, name):
            return None
        out.append((_name_key(name), value))
    return out if len({n for n, _ in out}) == len(out) else None


def _closing_bracket(s: str) -> int:
    """Index of the bracket that closes ``s[0]``, or -1."""
    depth = 0
    for i, ch in enumerate(s):
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
            if depth == 0:
                return i
    return -1


def unnamed_values(s: str) -> list[str] | None:
    """``2, 19`` or ``(2, 19)`` -> ``["2", "19"]``: a bare list of two or more values without any ``=``."""
    s = s.strip()
    if s.startswith("(") and s.endswith(")") and _closing_bracket(s) == len(s) - 1:
        s = s[1:-1]
    cuts = top_level_positions(s, ",;")
    if not cuts or "=" in s:
        return None
    parts = [s[a + 1 : b].strip() for a, b in zip([-1, *cuts], [*cuts, len(s)], strict=True)]
    return parts if all(parts) else None


def align_named_solutions(gold: str, pred: str) -> tuple[str, str] | None:
    """Both answers as tuples in the ground truth's order when the ground truth names its values.

    ``a_{37} = 19, a_3 = 2`` against ``a_3 = 2, a_{37} = 19`` gives ``("(2, 19)", "(2, 19)")``: the answer's
    values are reordered by name. An answer without names (``2, 19``) is taken in the ground truth's order.
    Returns None when the ground truth is not a list of named values or the answer names other things or a
    different number of values (the pair is then judged as written).
    """
    if "=" not in gold:
        return None
    named_gold = named_values(unwrap(gold))
    if named_gold is None:
        return None
    pred = unwrap(pred)
    named_pred = named_values(pred)
    if named_pred is not None:
        by_name = dict(named_pred)
        if set(by_name) != {n for n, _ in named_gold}:
            return None
        pred_values = [by_name[n] for n, _ in named_gold]
    else:
        pred_values = unnamed_values(pred)
        if pred_values is None or len(pred_values) != len(named_gold):
            return None

    def as_tuple(values: list[str]) -> str:
        return "(" + ", ".join(normalize_answer(v).text for v in values) + ")"

    return as_tuple([v for _, v in named_gold]), as_tuple(pred_values)


def inequality_as_interval(s: str) -> str:
    """``-2 \\le x \\le 7`` -> ``[-2, 7]``; ``7 > x \\ge -2`` -> ``[-2, 7)``; ``x \\in [-2, 7]`` -> ``[-2, 7]``.

    Both answers go through this, so a chain and the interval it describes compare equal; anything else is
    returned unchanged."""
    m = _IN_SET.match(s) if "\\in" in s else None
    if m:
        return m.group(1).strip()
    if not any(c in s for c in "<>\\"):
        return s
    for pattern, _ in _CHAINS:
        m = pattern.match(s)
        if m and not _RELATION.search(m.group("lo")) and not _RELATION.search(m.group("hi")):
            left = "(" if m.group("a") in ("<", ">") or m.group("a") in ("\\lt", "\\gt") else "["
            right = ")" if m.group("b") in ("<", ">") or m.group("b") in ("\\lt", "\\gt") else "]"
            return f"{left}{m.group('lo').strip()}, {m.group('hi').strip()}{right}"
    return s


_EXPONENT_FORM = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))[eE]([+-]?\d{1,4})$")


def expand_exponent_form(s: str) -> str:
    """``2.5e-3`` -> ``0.0025``, ``1e+20`` -> ``100000000000000000000``: scientific notation in positional
    digits (math-verify reads the ``e`` as Euler's number). Results over 400 digits are left as they are."""
    m = _EXPONENT_FORM.match(s)
    if not m:
        return s
    digits = format(Decimal(s), "f")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return digits if len(digits) <= 400 else s


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
    raw = unicode_math(raw)
    m = _TEXT_NOUN_TAIL.match(raw.strip().strip("$").strip())
    if m and m.group("words").strip().lower() not in {"or", "and", "to"} and not _PERCENT.fullmatch(m.group("words").strip()):
        raw = m.group("num")
    s = unwrap(raw)
    if "\\lim" in s:
        s = _LIM_EQUALS.sub(r"\1\\to ", s)
    if "\\int" in s:
        s = _INT_VARIABLE.sub(r"\1", s)
    s = inequality_as_interval(s)
    s = strip_equation_lhs(s)
    s = _DEGREES.sub("", s).strip()
    s, n_percent = _PERCENT.subn("", s)
    s = _TRAILING_SPACING.sub("", s).strip()
    s = _CURRENCY.sub("", s).strip()
    if s and (s[-1] in "€£¥₹₩₽" or s[-1] in "DRPYB"):  # a sign or code after the number (5€, 5 USD)
        s = _CURRENCY_AFTER.sub("", s).strip()
    for _ in range(2):
        s = _UNIT_TAIL.sub("", s).strip()
    s = _TRAILING_SPACING.sub("", s.rstrip(" .;,")).strip()
    if s.startswith("{") and s.endswith("}") and s.count("{") == 1:
        s = s[1:-1].strip()
    s = remove_thousands_separators(s)
    s = expand_exponent_form(s)
    return NormalizedAnswer(s, n_percent > 0)
