"""Find a model's final answer in its response: the RISE contract (strict) or any free-text style (lenient).

*strict* is exactly what the RISE reward grades: the content of the LAST ``\\boxed{}`` of the response
(``reward_fns.extract.last_boxed``); a response without one has no answer.

*lenient* reads answers the way a human grader would, for models that were never asked for a box. It tries
these sources in order and returns the first that yields an answer (``Extraction.method`` says which):

1. ``boxed``: the last ``\\boxed{}`` (inside ``<answer>`` when there is one);
2. ``answer_tag``: the ``<answer>...</answer>`` block;
3. ``json``: the ``"short answer"`` field of a JSON answer (DynaMath's requested format);
4. ``cue``: the text after the LAST answer cue (``the answer is``, ``Answer:``, ``final answer:``, ``the correct
   option is``, ``Therefore, ... is``...), up to the end of its sentence;
5. ``leading_option``: a response that starts with an option (``(B)``, ``B.``, ``B\\n``) — the short-answer
   style of MathVista/MATH-V baselines; ``letter_line``: a response whose last line is a bare option letter;
   ``conclusion``: a closing ``So/Therefore/Thus ... is X`` sentence; ``bold``: the last short ``**X**``;
6. ``last_line``: a short last line (``42``, ``(C) 8/11``, ``x = 3 cm``);
7. ``last_number``: the last number of the response (only when the caller asks for a number);
8. ``last_sentence``: the last sentence (what an extraction judge returns for a response that states no answer,
   e.g. a refusal; MathVista's rule still maps it to the nearest choice).

The extracted span is raw text; which option it names or which number it states is decided by the benchmark's
rules (:mod:`verl_rise.evaluation.rules`). All scans are linear in the response length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reward_fns.extract import answer_block, last_boxed
from reward_fns.limits import MAX_ANSWER_CHARS

STRICT, LENIENT, JUDGE = "strict", "lenient", "judge"
EXTRACT_MODES = (STRICT, LENIENT, JUDGE)

#: Longest span taken after an answer cue or from a last line (longer ones are prose, not an answer).
MAX_SPAN_CHARS = 200


@dataclass(frozen=True)
class Extraction:
    """An extracted final answer.

    Attributes:
        text: the answer span (stripped), or "" when none was found.
        method: which source gave it (see the module docstring), or the reason none was found (``no_box``,
            ``no_answer``, ``empty_response``).
    """

    text: str
    method: str

    @property
    def found(self) -> bool:
        return bool(self.text)


def extract_strict(response: str) -> Extraction:
    """The RISE contract: the content of the last ``\\boxed{}`` (as ``reward_fns`` grades it).

    Example:
        >>> extract_strict("<think>...</think><answer>So \\\\boxed{12}</answer>")
        Extraction(text='12', method='boxed')
        >>> extract_strict("The answer is 12.").method
        'no_box'
    """
    box = last_boxed(response or "", MAX_ANSWER_CHARS)
    if box.content is None:
        return Extraction("", box.reason)
    return Extraction(box.content, "boxed")


# Answer cues, most specific first in alternation; the LAST match in the response wins.
_CUE = re.compile(
    r"(?:final\s+answer|correct\s+(?:answer|option|choice)|right\s+(?:answer|option|choice)"
    r"|best\s+(?:answer|option|choice)"
    r"|(?:closest|matching)\s+(?:answer|option|choice)|(?:option|choice)\s+letter"
    r"|(?:option|choice)\s+that\s+matches(?:\s+(?:this|it))?"
    r"|answer\s+(?:choice|option)|short\s+answer|\banswer|答案)"
    r"(?:\s+(?:to\s+(?:the|this)\s+question|would\s+be|should\s+be|must\s+be|will\s+be|is\s+therefore|is\s+thus|is))?"
    r"\s*(?:\*\*)?\s*(?::|：|is\b|=|would\s+be\b|should\s+be\b|will\s+be\b|是|为)\s*(?:\*\*)?",
    re.IGNORECASE,
)
# "Therefore, the length of BC is 5 cm." — a conclusion sentence without the word "answer".
_CONCLUSION = re.compile(
    r"(?:^|[\n.!?]\s*)(?:so|thus|therefore|hence|in\s+conclusion|consequently)\b,?\s+(?P<body>[^\n]*?)"
    r"\b(?:is|are|equals|=|would\s+be|will\s+be)\s+(?P<span>[^\n]+)$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<![0-9A-Z])\.(?:\s|$)|(?<=[0-9A-Za-z)\]}$])\.(?:\s+[A-Z]|\s*\n)|\n")
# Closing pleasantries that follow the answer ("I hope this helps!", "Let me know if ...") are not the answer.
_PLEASANTRY = re.compile(
    r"^\s*(?:I\s+hope\s+(?:this|that)|Let\s+me\s+know|Do\s+you\s+(?:have|want)|Is\s+there\s+anything|Feel\s+free"
    r"|Please\s+let\s+me\s+know|If\s+you\s+have\s+any)",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*([^*\n]{1,40}?)\*\*")
_LETTER_LINE = re.compile(r"^\s*(?:\*\*)?\(?([A-J])\)?(?:\*\*)?[.。]?\s*$")
_LEADING_OPTION = re.compile(r"^\s*(?:\*\*)?\s*(?:\(([A-Z])\)|([A-Z])(?:[.:)]|\s*\n|$))")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_JSON_SHORT = re.compile(r'"short answer"\s*:\s*"((?:[^"\\]|\\.)*)"', re.IGNORECASE)


def _drop_pleasantries(text: str) -> str:
    lines = text.rstrip().splitlines()
    while lines and (not lines[-1].strip() or _PLEASANTRY.match(lines[-1])):
        lines.pop()
    if lines:
        # "...is 5. I hope this helps!" on one line: cut the pleasantry sentence off.
        parts = re.split(r"(?<=[.!?])\s+", lines[-1])
        while len(parts) > 1 and _PLEASANTRY.match(parts[-1]):
            parts.pop()
        lines[-1] = " ".join(parts)
    return "\n".join(lines)


def _bold_inside(span: str) -> str:
    """``**3** groups of bars`` -> ``3``: an answer emphasised inside a longer span."""
    found = [m.group(1).strip() for m in _BOLD.finditer(span) if not m.group(1).strip().endswith(":")]
    return found[-1] if len(found) == 1 else span


def _clean_span(span: str) -> str:
    span = _bold_inside(span.strip()).strip()
    span = re.sub(r"^(?:\*\*|__)+|(?:\*\*|__)+$", "", span).strip()
    span = span.strip(" \t:*#`\"'")
    span = re.sub(r"[\s.。!]+$", "", span)
    return span.strip()


def _after_last_cue(text: str) -> str:
    match = None
    for match in _CUE.finditer(text):
        pass
    if match is None:
        return ""
    rest = text[match.end():].lstrip()
    box = last_boxed(rest, MAX_ANSWER_CHARS)
    if box.content is not None and rest.find("\\boxed") < 80:
        return box.content
    end = _SENTENCE_END.search(rest)
    span = rest[: end.start()] if end else rest
    if not span.strip() and end is not None and end.group(0) == "\n":
        # "Answer:\n(B) 12": the answer sits on the next line.
        nxt = rest[end.end():].lstrip().split("\n", 1)[0]
        span = nxt
    span = _clean_span(span)
    return span if 0 < len(span) <= MAX_SPAN_CHARS else ""


def _conclusion(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines[-3:]):
        m = _CONCLUSION.search(line.strip())
        if m:
            span = _clean_span(m.group("span"))
            if 0 < len(span) <= MAX_SPAN_CHARS:
                return span
    return ""


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    span = _clean_span(lines[-1])
    return span if 0 < len(span) <= 40 else ""


def last_number(text: str) -> str:
    """The last number written in ``text`` (``1,234.5`` kept whole), or "".

    Example:
        >>> last_number("It costs $1,450.25 in total; 2 items.")
        '2'
    """
    found = ""
    for found in (m.group(0) for m in _NUMBER.finditer(text or "")):
        pass
    return found


def extract_lenient(response: str, *, want_number: bool = False) -> Extraction:
    """The final answer of a free-text response (see the module docstring for the order of sources).

    Args:
        response: the model's response.
        want_number: the question asks for a number: fall back to the response's last number.

    Returns:
        :class:`Extraction`; ``method`` is ``no_answer`` (or ``empty_response``) when nothing was found.

    Example:
        >>> extract_lenient("Adding the two bars gives 12 + 30 = 42.\\nThe answer is 42.")
        Extraction(text='42', method='cue')
        >>> extract_lenient("(B) 8/11").method
        'leading_option'
    """
    text = (response or "").strip()
    if not text:
        return Extraction("", "empty_response")
    block = answer_block(text, MAX_ANSWER_CHARS)
    scope = block.content if block.content is not None else text
    box = last_boxed(scope, MAX_ANSWER_CHARS)
    if box.content is None and block.content is not None:
        box = last_boxed(text, MAX_ANSWER_CHARS)
    if box.content is not None:
        return Extraction(box.content, "boxed")
    if block.content is not None:
        inner = _after_last_cue(block.content) or _clean_span(block.content)
        if inner and len(inner) <= MAX_SPAN_CHARS:
            return Extraction(inner, "answer_tag")
    m = _JSON_SHORT.search(text)
    if m and m.group(1).strip():
        return Extraction(m.group(1).strip(), "json")
    text = _drop_pleasantries(text) or text
    cue = _after_last_cue(text)
    if cue:
        return Extraction(cue, "cue")
    m = _LEADING_OPTION.match(text)
    if m:
        return Extraction(m.group(1) or m.group(2), "leading_option")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    m = _LETTER_LINE.match(lines[-1]) if lines else None
    if m:
        return Extraction(m.group(1), "letter_line")
    concl = _conclusion(text)
    if concl:
        return Extraction(concl, "conclusion")
    bold = [b.group(1).strip() for b in _BOLD.finditer(text) if not b.group(1).strip().endswith(":")]
    if bold:
        return Extraction(_clean_span(bold[-1]), "bold")
    line = _last_line(text)
    if line:
        return Extraction(line, "last_line")
    if want_number:
        num = last_number(text)
        if num:
            return Extraction(num, "last_number")
    sentence = _last_sentence(text)
    if sentence:
        return Extraction(sentence, "last_sentence")
    return Extraction("", "no_answer")


def _last_sentence(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    parts = [p for p in re.split(r"(?<=[.!?])\s+", lines[-1].strip()) if p.strip()]
    span = _clean_span(parts[-1]) if parts else ""
    return span if 0 < len(span) <= MAX_SPAN_CHARS else ""
