"""Rewrite an expert response into the RISE format and verify it with the RISE reward.

Expert responses (strong models, other SFT sets, an OpenAI-compatible endpoint) rarely follow the Metis-RISE output
contract. :func:`to_rise_format` turns one into ``<think> reasoning </think><answer> The answer is $\\boxed{X}$
</answer>`` (the layout of the example in the Metis-RISE system prompt) and keeps it only when
``reward_fns.compute_score`` gives it acc 1 and format 1 against the prompt's ground truth.

How the final answer X is found, in order (the ``method`` of the result):

1. ``as_is``: the response already scores acc 1 and format 1; it is kept unchanged.
2. ``boxed``: the last ``\\boxed{}`` of the answer part (after ``</think>`` when the response has a think block,
   else the whole response).
3. ``final_sentence``: the last line ends in an answer statement (``Therefore, the answer is (D).``,
   ``The answer is: 4``, ``The final answer is 52.``); X is what follows the last ``answer is``/``answer:``. Only the
   LAST line counts: a response that states an answer and then keeps reasoning is not recovered.
4. ``model_answer``: the last line is a bare answer (``11.``) equal to the record's ``model_answer`` field (the
   answer an evaluation harness extracted). The field alone is never trusted: it must be what the response ends
   with.

For a multiple-choice prompt X becomes the option LETTER it names: a letter as such, or an option's text
(``\\boxed{2 \\cdot 4 \\cdot 3}`` for option D). Which option a text names is decided by the reward's own choice
logic (``reward_fns.accuracy.judge`` with each letter as ground truth), so the rewrite and the reward cannot
disagree. The reasoning keeps the expert's words, with its ``\\boxed{}`` wrappers removed so that the only box is
the final answer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from reward_fns import compute_score
from reward_fns.accuracy import judge
from reward_fns.choice import is_choice_letter, text_key
from reward_fns.extract import last_boxed, unbox_all
from reward_fns.format import format_check
from reward_fns.limits import MAX_ANSWER_CHARS
from reward_fns.normalize import unwrap
from verl_rise.sft_data.records import BAD_FORMAT, EMPTY_RESPONSE, NO_FINAL_ANSWER, NO_REASONING, WRONG_ANSWER

AS_IS, BOXED, FINAL_SENTENCE, MODEL_ANSWER = "as_is", "boxed", "final_sentence", "model_answer"
METHODS = (AS_IS, BOXED, FINAL_SENTENCE, MODEL_ANSWER)

#: Default least number of non-space characters of reasoning besides the final-answer statement. Responses such as
#: ``The answer is (D).`` or ``11.`` are correct but teach answer-guessing, not reasoning.
MIN_REASONING_CHARS = 20
#: Longest final answer accepted from a final sentence (longer ones are prose, not an answer).
MAX_SENTENCE_ANSWER_CHARS = 100

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_ANSWER_CUE = re.compile(r"\banswer\s*(?:is\b|:)\s*:?", re.IGNORECASE)
_TRAILING = re.compile(r"[\s.。!*]+$")


@dataclass(frozen=True)
class Rewrite:
    """Outcome of :func:`to_rise_format`.

    Attributes:
        text: the RISE-format response, or None when rejected.
        reason: ``"ok"`` or a reject reason of :mod:`verl_rise.sft_data.records`.
        method: one of :data:`METHODS` ("" when no final answer was found).
        pred: the final answer as written into the box ("" when none).
        detail: why, in words (the reward's reason, the format failure, ...).
    """

    text: str | None
    reason: str
    method: str = ""
    pred: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.text is not None


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def final_sentence_answer(text: str) -> str | None:
    """The answer stated by the last line of ``text`` (``... the answer is (D).`` -> ``(D)``), or None.

    Example:
        >>> final_sentence_answer("6 + 3 = 9.\\nTherefore, the answer is (D).")
        '(D)'
        >>> final_sentence_answer("The answer is 3.\\nThere are 9 children.") is None
        True
    """
    line = _last_line(text)
    match = None
    for match in _ANSWER_CUE.finditer(line):
        pass
    if match is None:
        return None
    answer = _TRAILING.sub("", line[match.end() :]).strip()
    if not answer or len(answer) > MAX_SENTENCE_ANSWER_CHARS:
        return None
    return answer


# Where the answer sentence can start: a new line, a new sentence, or a concluding clause ("..., so it is 42").
_SENTENCE_ENDS = ("\n", ". ", "? ", "! ", ".$ ", "; ", ", so ", ", thus ", ", hence ", ", therefore ")


def reasoning_chars(text: str, *, bare_final_line: bool = False) -> int:
    """Non-space characters of reasoning in ``text``: everything before the sentence that states the final answer.

    The answer sentence is the one holding the last ``\\boxed``; else the last line when it is an answer statement
    (``..., the answer is (E).``); with ``bare_final_line`` the last line. The answer sentence starts after the
    last newline, ``.``/``?``/``!``/``;`` followed by a space, or concluding ``, so``/``, thus``/``, hence``/
    ``, therefore`` before that point: ``6 faces, so Elsa has $\\boxed{42}$ faces`` keeps ``6 faces``.

    Example:
        >>> reasoning_chars("2 + 0 = 2. So Maria took $\\\\boxed{2}$ apples.")
        5
        >>> reasoning_chars("The answer is (D).")
        0
    """
    text = text.strip()
    cut = text.rfind("\\boxed")
    if cut < 0:
        line = _last_line(text)
        line_start = text.rfind(line) if line else len(text)
        cue = None
        for cue in _ANSWER_CUE.finditer(line):
            pass
        if bare_final_line:
            cut = line_start
        elif cue is not None and final_sentence_answer(line) is not None:
            cut = line_start + cue.start()
        else:
            return len(re.sub(r"\s", "", unbox_all(text)))  # no answer sentence: all of it is reasoning
    start = max([text.rfind(end, 0, cut) for end in _SENTENCE_ENDS] + [0])
    return len(re.sub(r"\s", "", unbox_all(text[:start])))


def option_letters(answer: str, options: Sequence[str]) -> set[str]:
    """The option letters a final answer names, decided by the RISE reward's choice logic.

    Args:
        answer: a final answer (``"(B)"``, ``"B. 12"``, an option's text such as ``"8 kg"``).
        options: option texts, A first.

    Returns:
        the set of letters L for which ``reward_fns.accuracy.judge(L, answer, options)`` is correct (empty: names
        no option; more than one cannot happen for a letter answer, a hedge names none).
    """
    letters = [chr(ord("A") + i) for i in range(len(options))]
    return {L for L in letters if judge(L, answer, tuple(options)).acc == 1.0}


def _rise_text(reasoning: str, final: str) -> str:
    box = f"\\boxed{{{final}}}"
    answer = f"The answer is {box}" if "$" in final else f"The answer is ${box}$"
    return f"<think> {reasoning} </think><answer> {answer} </answer>"


def _split_think(response: str) -> tuple[str, str]:
    """(reasoning, answer part): the think block and what follows it, or the whole response twice."""
    start, end = response.find("<think>"), response.rfind("</think>")
    if 0 <= start < end:
        tail = response[end + len("</think>") :].replace("<answer>", " ").replace("</answer>", " ")
        return response[start + len("<think>") : end], tail
    return response, response


def to_rise_format(
    response: object,
    ground_truth: str,
    options: Sequence[str] | None = None,
    *,
    model_answer: object = None,
    reasoning: object = None,
    data_source: str = "",
    min_reasoning_chars: int = MIN_REASONING_CHARS,
) -> Rewrite:
    """Rewrite an expert response into the RISE format and verify it (see the module docstring for the rules).

    Args:
        response: the expert's response text (for a reasoning model behind an API: the final ``content``).
        ground_truth: the prompt's ``reward_model.ground_truth`` (an option letter for multiple choice).
        options: the prompt's ``extra_info.options`` (option texts, A first); empty or None for free-form.
        model_answer: the answer an evaluation harness extracted from the response, if the record has one; used
            only when the response ends with exactly that answer.
        reasoning: separate reasoning text (an API's ``reasoning_content``); when given it becomes the think
            block and ``response`` is searched for the final answer.
        data_source: passed to the reward (not used by it).
        min_reasoning_chars: least non-space characters of reasoning besides the final-answer statement.

    Returns:
        :class:`Rewrite`; ``text`` is set only when ``reward_fns.compute_score`` gives the rewritten response
        acc 1 and format 1 against ``ground_truth``. Never raises on bad input (it is rejected with a reason).
    """
    options = [str(o) for o in (options if options is not None else [])]
    extra = {"options": options}
    if not isinstance(response, str) or not response.strip():
        return Rewrite(None, EMPTY_RESPONSE, detail=f"response is {type(response).__name__} {str(response)[:40]!r}")
    if isinstance(reasoning, str) and reasoning.strip():
        think, tail = reasoning, response
    else:
        score = compute_score(data_source, response, ground_truth, extra)
        if score["acc"] == 1.0 and score["format"] == 1.0:
            if reasoning_chars(_split_think(response)[0]) < min_reasoning_chars:
                return Rewrite(None, NO_REASONING, AS_IS, score["pred"], "think block is too short")
            return Rewrite(response, "ok", AS_IS, score["pred"])
        think, tail = _split_think(response)

    boxed = last_boxed(tail, MAX_ANSWER_CHARS)
    if boxed.content is not None:
        method, candidate = BOXED, boxed.content
    elif (sentence := final_sentence_answer(tail)) is not None:
        method, candidate = FINAL_SENTENCE, sentence
    elif (
        isinstance(model_answer, str)
        and model_answer.strip()
        and text_key(_TRAILING.sub("", _last_line(tail))) == text_key(model_answer)
    ):
        method, candidate = MODEL_ANSWER, model_answer.strip()
    else:
        return Rewrite(None, NO_FINAL_ANSWER, detail=f"last box: {boxed.reason}; no final-answer sentence")

    final = unwrap(candidate)
    if options and is_choice_letter(str(ground_truth)):
        named = option_letters(candidate, options)
        if len(named) == 1:
            final = next(iter(named))
    thought = reasoning_chars(think, bare_final_line=method == MODEL_ANSWER)
    think = unbox_all(think).strip()
    if any(tag in think for tag in _TAGS):
        return Rewrite(None, BAD_FORMAT, method, final, "a think/answer tag inside the reasoning")
    text = _rise_text(think, final)
    score = compute_score(data_source, text, ground_truth, extra)
    if score["acc"] != 1.0:
        return Rewrite(None, WRONG_ANSWER, method, final, f"reward: {score['reason']} (pred {score['pred']!r})")
    if score["format"] != 1.0:
        return Rewrite(None, BAD_FORMAT, method, final, f"format: {format_check(text)[1]}")
    if thought < min_reasoning_chars:
        return Rewrite(None, NO_REASONING, method, final, f"fewer than {min_reasoning_chars} characters of reasoning")
    return Rewrite(text, "ok", method, final)
