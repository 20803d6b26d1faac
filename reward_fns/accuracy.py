"""Accuracy reward: is the last ``\\boxed{}`` of a response mathematically equivalent to the ground truth?

Pipeline for one response (each step bounded before the next runs):

1. input checks and caps (:mod:`reward_fns.limits`);
2. extraction of the last ``\\boxed{}`` (:mod:`reward_fns.extract`);
3. safety screens (:mod:`reward_fns.guard`);
4. multiple choice, when the ground truth is an option letter (:mod:`reward_fns.choice`);
5. the fast path: exact numbers and number collections (:mod:`reward_fns.exact_numbers`), after surface
   normalisation (:mod:`reward_fns.normalize`), decided only when the answer is certain;
6. the slow path: math-verify (Kydlíček et al., github huggingface/Math-Verify) in a killable subprocess
   with a hard time limit (:mod:`reward_fns.verifier`).

Final verdicts are cached per (ground truth, final answer, options): a GRPO batch repeats each ground truth
n times and rollouts of one prompt often agree, so most of a batch is cache hits. Outcomes that depend on
the machine (``timeout``, ``verifier_busy``, ...) are never cached.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from cachetools import LRUCache

from reward_fns.choice import (
    choice_letter,
    is_choice_letter,
    looks_mathematical,
    options_are_letters,
    read_letters,
    text_key,
)
from reward_fns.extract import answer_block, last_boxed
from reward_fns.guard import screen
from reward_fns.inputs import ground_truth_texts, option_texts
from reward_fns.limits import DEFAULT_TIMEOUT_S, MAX_ANSWER_CHARS, MAX_RESPONSE_CHARS
from reward_fns.normalize import NormalizedAnswer, align_named_solutions, normalize_answer, unwrap
from reward_fns.exact_numbers import close_but_not_equal, parse_collection, parse_number
from reward_fns.verifier import default_pool


@dataclass(frozen=True)
class AccuracyResult:
    """Outcome of :func:`score_accuracy`.

    Attributes:
        acc: 1.0 (equivalent) or 0.0.
        pred: the extracted final answer ("" when none was found).
        reason: ``correct``, ``wrong``, or why the answer could not be judged (``no_box``,
            ``unclosed_box``, ``empty_box``, ``answer_too_long``, ``response_too_long``, ``invalid_input``,
            ``too_many_options``, ``option_too_long``, ``invalid_options``, ``unsupported_operator``,
            ``unsafe_input``, ``power_tower``/``huge_exponent``/``huge_factorial``/``nested_factorial``/
            ``huge_number``/``too_deep``, ``hedged_choice``, ``timeout``, ``verifier_busy``,
            ``verifier_crashed``, ``verifier_unavailable``, ``parse_error: ...``).
        method: which stage decided: ``extract``, ``guard``, ``choice``, ``fast``, ``verifier`` or ``input``.
    """

    acc: float
    pred: str
    reason: str
    method: str


_CACHE: LRUCache = LRUCache(maxsize=200_000)
_CACHE_LOCK = threading.Lock()
# Verdicts that depend on the machine's state (load, memory, a worker's death), not on the inputs, are not
# cached: a timeout under load must not turn a right answer into a 0 for the life of the process.
_TRANSIENT = {"timeout", "verifier_busy", "verifier_crashed", "verifier_unavailable", "parse_error: MemoryError"}


def clear_cache() -> None:
    """Drop all cached verdicts (benchmarks use it to measure a cold start)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _values(n: NormalizedAnswer) -> tuple[Fraction, ...] | None:
    """The numeric readings of an answer: v, plus v/100 when it carried a percent sign."""
    v = parse_number(n.text)
    if v is None:
        return None
    return (v, v / 100) if n.percent else (v,)


def _fast_compare(gold: NormalizedAnswer, pred: NormalizedAnswer) -> bool | None:
    """Decide equivalence without sympy when certain; None hands the pair to math-verify."""
    gv, pv = _values(gold), _values(pred)
    if gv is not None and pv is not None:
        if any(a == b for a in gv for b in pv):
            return True
        if any(close_but_not_equal(a, b) for a in gv for b in pv):
            return None
        return False
    if gv is not None and pred.text and not any(c.isdigit() for c in pred.text) and "\\" not in pred.text:
        # A word or a letter cannot equal a number ("B" vs 60); LaTeX such as \pi is left to math-verify.
        return False
    gc, pc = parse_collection(gold.text), parse_collection(pred.text)
    if gc is not None and pc is not None:
        if gc.kind == pc.kind == "set":
            return set(gc.values) == set(pc.values)
        if gc.kind == pc.kind == "ordered":
            return (gc.left, gc.right, gc.values) == (pc.left, pc.right, pc.values)
        return None
    return None


def _judge_free_form(gold_raw: str, pred_raw: str, timeout_s: float) -> tuple[float, str, str]:
    aligned = align_named_solutions(gold_raw, pred_raw)
    if aligned is not None:
        gold_raw, pred_raw = aligned
    gold, pred = normalize_answer(gold_raw), normalize_answer(pred_raw)
    fast = _fast_compare(gold, pred)
    if fast is not None:
        return (1.0, "correct", "fast") if fast else (0.0, "wrong", "fast")
    verdict = default_pool().equivalent(gold.text, pred.text, timeout_s)
    if verdict.value is None:
        return 0.0, verdict.reason, "verifier"
    return (1.0, "correct", "verifier") if verdict.value else (0.0, "wrong", "verifier")


def _judge_choice(gold_letter: str, pred_raw: str, options: tuple[str, ...], timeout_s: float) -> tuple[float, str, str]:
    reading = read_letters(pred_raw)
    if reading.hedge:
        return 0.0, "hedged_choice", "choice"
    if reading.letters:
        return (1.0, "correct", "choice") if reading.letters == {gold_letter} else (0.0, "wrong", "choice")
    if not options or options_are_letters(list(options)):
        return 0.0, "wrong", "choice"
    matched = _match_option_texts(pred_raw, options, timeout_s)
    if isinstance(matched, str):
        return 0.0, matched, "verifier"
    letters = {chr(ord("A") + i) for i in matched}
    if len(letters) > 1:
        return 0.0, "hedged_choice", "choice"
    return (1.0, "correct", "choice") if letters == {gold_letter} else (0.0, "wrong", "choice")


def _match_option_texts(pred_raw: str, options: tuple[str, ...], timeout_s: float) -> set[int] | str:
    """Indices of the options whose text the answer states; a reason string if that cannot be decided."""
    key = text_key(pred_raw)
    exact = {i for i, opt in enumerate(options) if text_key(opt) == key}
    if exact:
        return exact
    pred = normalize_answer(pred_raw)
    fast: set[int] = set()
    undecided = []
    for i, opt in enumerate(options):
        verdict = _fast_compare(normalize_answer(opt), pred)
        if verdict:
            fast.add(i)
        elif verdict is None and looks_mathematical(opt) and looks_mathematical(pred_raw):
            undecided.append(i)
    if fast or not undecided:
        return fast
    if any(screen(options[i]) for i in undecided):
        return "unsafe_input"
    verdict = default_pool().match_options(pred.text, [normalize_answer(options[i]).text for i in undecided], timeout_s)
    if verdict.value is None:
        return verdict.reason
    return {i for i, hit in zip(undecided, verdict.value, strict=True) if hit}


def judge(ground_truth: str, final_answer: str, options: Sequence[str] = (), timeout_s: float = DEFAULT_TIMEOUT_S) -> AccuracyResult:
    """Compare an extracted final answer with the ground truth (steps 3-6 of the module pipeline).

    Args:
        ground_truth: the reference answer: a number, an expression, a set/tuple/interval, or an option
            letter for multiple choice.
        final_answer: the content of the response's last ``\\boxed{}``.
        options: option texts, A first, when the prompt is multiple choice (may be empty).
        timeout_s: hard limit for the symbolic verifier (seconds).

    Returns:
        :class:`AccuracyResult` (``pred`` is ``final_answer``). Never raises.

    Example:
        >>> judge("B", "B. 12").acc
        1.0
        >>> judge("30", "30^\\\\circ").acc
        1.0
    """
    opts = tuple(options)
    cache_key = (ground_truth, final_answer, opts)
    with _CACHE_LOCK:
        hit = _CACHE.get(cache_key)
    if hit is not None:
        return hit
    result = _judge_uncached(ground_truth, final_answer, opts, timeout_s)
    if result.reason not in _TRANSIENT:
        with _CACHE_LOCK:
            _CACHE[cache_key] = result
    return result


def _judge_uncached(ground_truth: str, final_answer: str, options: tuple[str, ...], timeout_s: float) -> AccuracyResult:
    reason = screen(final_answer)
    if reason:
        return AccuracyResult(0.0, final_answer, reason, "guard")
    if is_choice_letter(ground_truth):
        acc, reason, method = _judge_choice(choice_letter(ground_truth), final_answer, options, timeout_s)
    else:
        acc, reason, method = _judge_free_form(ground_truth, final_answer, timeout_s)
    return AccuracyResult(acc, final_answer, reason, method)


def score_accuracy(
    solution_str: object,
    ground_truth: object,
    options: object = None,
    *,
    allow_answer_without_box: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_response_chars: int = MAX_RESPONSE_CHARS,
    max_answer_chars: int = MAX_ANSWER_CHARS,
) -> AccuracyResult:
    """Accuracy of one response: 1.0 when its last ``\\boxed{}`` is equivalent to the ground truth.

    Args:
        solution_str: the decoded response.
        ground_truth: the reference answer: a string or a number (floats in exponent form are compared as
            numbers); a list, tuple or numpy array means "any of these" (:func:`reward_fns.inputs.ground_truth_texts`).
        options: option texts (A first) for multiple choice: any sequence (e.g. a numpy array from parquet)
            or a dict keyed by letter (:func:`reward_fns.inputs.option_texts`).
        allow_answer_without_box: when the response has no ``\\boxed{}``, judge the content of its last
            ``<answer>...</answer>`` block instead (off by default: the RISE prompt demands a box).
        timeout_s: hard wall-clock limit for the symbolic verification (seconds).
        max_response_chars: longer responses score 0 (``response_too_long``).
        max_answer_chars: longer final answers score 0 (``answer_too_long``).

    Returns:
        :class:`AccuracyResult`. Never raises and never blocks longer than ``timeout_s`` on a verification
        (plus, once per verifier subprocess, its start-up).

    Example:
        >>> r = score_accuracy("<think>...</think><answer>\\\\boxed{\\\\frac{1}{2}}</answer>", "0.5")
        >>> (r.acc, r.pred, r.reason)
        (1.0, '\\\\frac{1}{2}', 'correct')
    """
    if not isinstance(solution_str, str):
        return AccuracyResult(0.0, "", "invalid_input", "input")
    if len(solution_str) > max_response_chars:
        return AccuracyResult(0.0, "", "response_too_long", "input")
    truths = ground_truth_texts(ground_truth)
    if truths is None:
        return AccuracyResult(0.0, "", "invalid_input", "input")
    opts, refused = option_texts(options)
    if refused:
        return AccuracyResult(0.0, "", refused, "input")
    extraction = last_boxed(solution_str, max_answer_chars)
    if extraction.content is None and allow_answer_without_box and extraction.reason == "no_box":
        extraction = answer_block(solution_str, max_answer_chars)
        if extraction.content is not None:
            extraction = type(extraction)(unwrap(extraction.content))
    if extraction.content is None:
        return AccuracyResult(0.0, "", extraction.reason, "extract")
    result = None
    for truth in truths:
        result = judge(truth, extraction.content, opts, timeout_s)
        if result.acc == 1.0:
            break
    return result


SCORE_ACCURACY_OPTIONS = ("allow_answer_without_box", "timeout_s", "max_response_chars", "max_answer_chars")


def accuracy_reward(solution_str: object, ground_truth: object, extra_info: dict | None = None, **kwargs: object) -> float:
    """1.0 when the last ``\\boxed{}`` of ``solution_str`` is equivalent to ``ground_truth``, else 0.0.

    Options for multiple choice are read from ``extra_info["options"]``. Keyword arguments named in
    :data:`SCORE_ACCURACY_OPTIONS` are passed to :func:`score_accuracy`; others (verl adds its own) are
    ignored. Never raises.

    Example:
        >>> accuracy_reward("<think>x</think><answer>\\\\boxed{(B)}</answer>", "B")
        1.0
    """
    options = extra_info.get("options") if isinstance(extra_info, dict) else None
    known = {k: v for k, v in kwargs.items() if k in SCORE_ACCURACY_OPTIONS}
    return score_accuracy(solution_str, ground_truth, options, **known).acc
