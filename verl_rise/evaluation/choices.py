"""Which option(s) an extracted answer names: by letter, or by the option's own text.

Letters are read with the RISE reward's reader (``reward_fns.choice.read_letters``: ``B``, ``(B)``, ``B. 12``,
``Option B``), so the two cannot disagree on a boxed letter. On top of it, free text needs:

* a letter inside a sentence (``(B) is correct``, ``option C``, ``**D**``);
* an option's text (``8/11`` for option B ``8/11``; ``$8 \\mathrm{~kg}$`` for ``8 kg``): equal after the reward's
  normalisation, numerically equal, or the only option whose text the answer contains as a whole phrase;
* several letters (LogicVista answers such as ``A, C``): :func:`read_letter_set`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reward_fns.choice import read_letters, text_key
from reward_fns.exact_numbers import parse_number
from reward_fns.normalize import normalize_answer, unwrap

_IN_SENTENCE = re.compile(
    r"(?:\(([A-J])\)|\b(?:option|choice|answer|letter)\s*:?\s*\(?([A-J])\)?(?![A-Za-z])|\*\*\(?([A-J])\)?\*\*"
    r"|^\s*([A-J])\s*(?:[.:)\]]|$|\s+(?:is|because|since)\b)"
    r"|(?:选项|答案|选|为|是)\s*[:：]?\s*\(?([A-J])\)?(?![A-Za-z]))",
    re.IGNORECASE,
)
_SEVERAL = re.compile(r"^\(?[A-J]\)?(?:\s*(?:,|;|/|&|\+|\band\b|\s)\s*\(?[A-J]\)?)*$")


def option_letters(n: int) -> str:
    """The first ``n`` option letters."""
    return "ABCDEFGHIJ"[:n]


def _number(text: str):
    try:
        return parse_number(normalize_answer(text).text)
    except Exception:  # noqa: BLE001 - parse_number is total on capped strings; stay safe on odd input
        return None


def match_option_text(answer: str, options: Sequence[str]) -> str | None:
    """The letter of the option whose text ``answer`` states, or None (also when several match).

    Example:
        >>> match_option_text("The fraction is 8/11", ["3/11", "8/11", "6/11", "3/5"])
        'B'
    """
    if not options or not answer:
        return None
    letters = option_letters(len(options))
    key = text_key(answer)
    exact = [letters[i] for i, opt in enumerate(options) if text_key(opt) == key]
    if len(exact) == 1:
        return exact[0]
    value = _number(answer)
    if value is not None:
        hits = [letters[i] for i, opt in enumerate(options) if _number(opt) == value]
        if len(hits) == 1:
            return hits[0]
    low = " " + unwrap(answer).lower() + " "
    contained = []
    for i, opt in enumerate(options):
        o = unwrap(opt).lower().strip().rstrip(".")
        if len(o) >= 1 and re.search(r"(?<![\w.])" + re.escape(o) + r"(?![\w])", low):
            contained.append((len(o), letters[i]))
    if contained:
        contained.sort(reverse=True)
        # One option's text may contain another's ("12" in "12 cm" is fine, "3" inside "3/5" is not a second hit):
        # keep the longest when the shorter ones are part of it.
        longest = contained[0]
        others = [c for c in contained[1:] if c[0] == longest[0]]
        if not others:
            return longest[1]
    return None


def read_letter(answer: str, options: Sequence[str] = (), n_options: int = 5) -> str | None:
    """The single option letter an answer names (a letter, a letter in a sentence, or an option's text).

    Args:
        answer: the extracted final answer.
        options: option texts, A first (may be empty when the figure holds the options).
        n_options: how many letters are valid when ``options`` is empty.

    Returns:
        the letter, or None when it names none or several (a hedge).
    """
    valid = option_letters(len(options) or n_options)
    reading = read_letters(answer)
    if reading.hedge:
        return None
    if reading.letters:
        letter = next(iter(reading.letters))
        return letter if letter in valid else None
    hits = {next(g for g in m.groups() if g).upper() for m in _IN_SENTENCE.finditer(answer)}
    hits &= set(valid)
    if len(hits) == 1:
        return hits.pop()
    if len(hits) > 1:
        return None
    if options and not all(re.fullmatch(r"\(?[A-J]\)?", o.strip()) for o in options):
        return match_option_text(answer, options)
    return None


def read_letter_set(answer: str, valid: str = "ABCDE") -> frozenset[str]:
    """All option letters an answer names, for questions with several right options (LogicVista).

    Example:
        >>> sorted(read_letter_set("A, C"))
        ['A', 'C']
        >>> sorted(read_letter_set("The answers are (B) and (D)"))
        ['B', 'D']
    """
    s = unwrap(answer).strip().rstrip(".")
    if _SEVERAL.match(s):
        return frozenset(c for c in s.upper() if c in valid)
    if re.fullmatch(r"[A-J]{2,5}", s):
        return frozenset(c for c in s if c in valid)
    single = read_letters(s)
    if single.letters:
        return frozenset(x for x in single.letters if x in valid)
    return frozenset(next(g for g in m.groups() if g).upper() for m in _IN_SENTENCE.finditer(s)) & frozenset(valid)
