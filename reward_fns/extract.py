"""Find the final answer in a response: the content of the last ``\\boxed{}`` or of the ``<answer>`` block.

Both scans are linear in the response length and never backtrack, so adversarial inputs (thousands of
unclosed braces, megabyte responses) cost one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOX = "\\boxed"


@dataclass(frozen=True)
class Extraction:
    """Outcome of an extraction.

    Attributes:
        content: the extracted text (stripped), or None when nothing usable was found.
        reason: "" on success, else one of ``no_box``, ``unclosed_box``, ``empty_box``, ``answer_too_long``,
            ``no_answer_block``.
    """

    content: str | None
    reason: str = ""


def _match_braces(text: str, open_index: int, max_chars: int) -> tuple[int, bool]:
    """Scan from ``text[open_index] == "{"`` to its matching ``}``.

    Escaped braces (``\\{``, ``\\}``: LaTeX set delimiters) do not count. Returns ``(close_index, too_long)``;
    ``close_index`` is -1 when the brace is never closed. Stops after ``max_chars`` characters of content.
    """
    depth = 0
    i = open_index
    end = len(text)
    limit = open_index + max_chars + 1
    while i < end:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i, False
        i += 1
        if i > limit:
            return -1, True
    return -1, False


def last_boxed(text: str, max_chars: int) -> Extraction:
    """Content of the LAST ``\\boxed{...}`` in ``text``.

    Only the last box counts (the convention of MATH-style graders and of math-verify's boxed extraction):
    when that box is unclosed, empty or too long the result is a failure even if an earlier box is fine,
    because the model's final statement is what is graded. ``\\fbox`` and brace-less ``\\boxed 7`` do not
    count: the RISE prompt asks for ``\\boxed{}``.

    Args:
        text: the response (any length; the scan is linear).
        max_chars: longest accepted box content.

    Returns:
        :class:`Extraction` with the stripped content, or ``content=None`` and a reason.

    Example:
        >>> last_boxed(r"so \\boxed{3} ... finally \\boxed{\\frac{1}{2}}", 100).content
        '\\\\frac{1}{2}'
    """
    start = text.rfind(_BOX)
    if start < 0:
        return Extraction(None, "no_box")
    i = start + len(_BOX)
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i >= len(text) or text[i] != "{":
        # `\boxed 7` or a trailing `\boxed`: not a complete \boxed{...}; the prompt asks for braces.
        return Extraction(None, "unclosed_box")
    close, too_long = _match_braces(text, i, max_chars)
    if too_long:
        return Extraction(None, "answer_too_long")
    if close < 0:
        return Extraction(None, "unclosed_box")
    content = text[i + 1 : close].strip()
    if not content:
        return Extraction(None, "empty_box")
    return Extraction(content)


def answer_block(text: str, max_chars: int) -> Extraction:
    """Content of the last ``<answer>...</answer>`` block, for the documented no-box fallback.

    Returns:
        :class:`Extraction`; reason ``no_answer_block`` when there is no closed block, ``answer_too_long``
        when its content exceeds ``max_chars``, ``empty_box`` when it is blank.
    """
    close = text.rfind("</answer>")
    if close < 0:
        return Extraction(None, "no_answer_block")
    open_ = text.rfind("<answer>", 0, close)
    if open_ < 0:
        return Extraction(None, "no_answer_block")
    content = text[open_ + len("<answer>") : close].strip()
    if not content:
        return Extraction(None, "empty_box")
    if len(content) > max_chars:
        return Extraction(None, "answer_too_long")
    return Extraction(content)


def has_complete_box(text: str) -> bool:
    """True when ``text`` contains at least one complete ``\\boxed{...}`` with non-blank content.

    One left-to-right pass with a stack of open boxes, so many unclosed ``\\boxed{`` cost O(n), not O(n^2).

    Example:
        >>> has_complete_box(r"\\boxed{7} then \\boxed{")
        True
        >>> has_complete_box(r"\\boxed{ } \\boxed 7")
        False
    """
    depth = 0
    open_boxes: list[tuple[int, int]] = []  # (depth of the box's brace, index after it)
    pending_box = False
    i, end = 0, len(text)
    while i < end:
        ch = text[i]
        if ch == "\\":
            if text.startswith(_BOX, i):
                pending_box = True
                i += len(_BOX)
                continue
            i += 2
            continue
        if ch == "{":
            depth += 1
            if pending_box:
                open_boxes.append((depth, i + 1))
        elif ch == "}":
            if open_boxes and open_boxes[-1][0] == depth:
                _, start = open_boxes.pop()
                if text[start:i].strip():
                    return True
            depth -= 1
        if not ch.isspace():
            pending_box = False
        i += 1
    return False


def unbox_all(text: str) -> str:
    """Replace every complete ``\\boxed{X}`` in ``text`` with ``X`` (same brace rules as :func:`last_boxed`).

    Used when a response is rewritten so that its only box is the final answer's (an earlier box would
    otherwise be graded if the final one were ever dropped). Unclosed or brace-less boxes are left as they are.
    Linear in the text length per box.

    Example:
        >>> unbox_all(r"so $\\boxed{\\frac{1}{2}}$ and \\boxed{3}, not \\boxed 4")
        'so $\\\\frac{1}{2}$ and 3, not \\\\boxed 4'
    """
    out: list[str] = []
    i = 0
    while True:
        start = text.find(_BOX, i)
        if start < 0:
            out.append(text[i:])
            return "".join(out)
        j = start + len(_BOX)
        while j < len(text) and text[j] in " \t\n":
            j += 1
        close = _match_braces(text, j, len(text))[0] if j < len(text) and text[j] == "{" else -1
        if close < 0:
            out.append(text[i:j])
            i = j
            continue
        out.append(text[i:start])
        # The content may itself hold boxes (\boxed{\boxed{2}}): unbox it too.
        out.append(unbox_all(text[j + 1 : close]))
        i = close + 1
