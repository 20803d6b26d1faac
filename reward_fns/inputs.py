"""Ground truths and option lists as datasets deliver them, made into bounded tuples of strings.

verl hands the reward what the parquet held: ``str``, Python or numpy numbers, lists, numpy arrays (pandas
gives those for list columns), dicts, occasionally ``None`` or NaN written as text. Each is converted here,
with every size checked *before* any per-item work, so that no input costs more than microseconds outside
the verifier's time limit.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping

from reward_fns.limits import MAX_GROUND_TRUTH_CHARS, MAX_GROUND_TRUTHS, MAX_OPTION_CHARS, MAX_OPTIONS

#: Ground truths that are the text of a missing value (``str(None)``, JSON null, NaN): never an answer.
MISSING_VALUE_TEXTS = frozenset({"None", "null", "nan", "NaN"})

# Integers with more bits than this have more than ~420 digits: beyond what any comparison here parses.
_MAX_INT_BITS = 1_400


def _scalar_text(value: object) -> str | None:
    """One ground truth as text, or None when it cannot be an answer."""
    if type(value) is str:
        text = value.strip()
    elif isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    elif isinstance(value, str):
        text = value.strip()
    elif isinstance(value, numbers.Integral):
        if int(value).bit_length() > _MAX_INT_BITS:
            return None
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            return None
        # str() of a float is its shortest round-trip form (1e-07, 2.5, 1e+20); exponents are expanded into
        # positional digits by reward_fns.normalize, so math-verify never reads `e` as Euler's number.
        text = str(value)
    else:
        return None
    if not text or len(text) > MAX_GROUND_TRUTH_CHARS or text in MISSING_VALUE_TEXTS:
        return None
    return text


def ground_truth_texts(ground_truth: object) -> tuple[str, ...] | None:
    """The acceptable answers of a ground truth, or None when it is not usable (``invalid_input``).

    Args:
        ground_truth: a string or number (one answer); a list, tuple or numpy array of them (any of these
            is right). At most :data:`~reward_fns.limits.MAX_GROUND_TRUTHS` answers of at most
            :data:`~reward_fns.limits.MAX_GROUND_TRUTH_CHARS` characters each.

    Returns:
        The answers as stripped strings; None for ``None``, bools, NaN/inf, empty or over-long texts, the
        text of a missing value (``"None"``, ``"null"``, ``"nan"``), nested lists, or too many answers.

    Example:
        >>> ground_truth_texts([1e-07, "2"])
        ('1e-07', '2')
    """
    if type(ground_truth) is str:  # the common case, without the generic checks below (hot path)
        text = ground_truth.strip()
        ok = text and len(text) <= MAX_GROUND_TRUTH_CHARS and text not in MISSING_VALUE_TEXTS
        return (text,) if ok else None
    if hasattr(ground_truth, "tolist") and not isinstance(ground_truth, str):  # numpy arrays and scalars
        if getattr(ground_truth, "size", 1) > MAX_GROUND_TRUTHS:
            return None
        ground_truth = ground_truth.tolist()
    items = ground_truth if isinstance(ground_truth, list | tuple) else [ground_truth]
    if not items or len(items) > MAX_GROUND_TRUTHS:
        return None
    texts = tuple(_scalar_text(item) for item in items)
    return None if any(t is None for t in texts) else texts


def option_texts(options: object) -> tuple[tuple[str, ...], str]:
    """Option texts, A first, and "" -- or ``()`` and the reason they are refused.

    Args:
        options: ``extra_info["options"]``: a list/tuple/numpy array of texts (A first), or a dict. A dict
            whose keys are all single letters is read by letter (``{"B": "12", "A": "10"}`` -> A=10, B=12; a
            missing letter is an empty option); any other dict is read by its values in order.

    Returns:
        ``(texts, "")``; ``((), "")`` when there are no options (None, a string, not iterable);
        ``((), "too_many_options")`` beyond :data:`~reward_fns.limits.MAX_OPTIONS`;
        ``((), "option_too_long")`` when one text exceeds :data:`~reward_fns.limits.MAX_OPTION_CHARS`.
    """
    if options is None or isinstance(options, str | bytes):
        return (), ""
    if type(options) in (list, tuple) and len(options) <= MAX_OPTIONS:  # the common case (hot path)
        if all(type(o) is str and len(o) <= MAX_OPTION_CHARS for o in options):
            return tuple(options), ""
    if isinstance(options, Mapping):
        if len(options) > MAX_OPTIONS:
            return (), "too_many_options"
        keys = [str(k).strip().strip("()").upper() for k in options]
        if keys and all(len(k) == 1 and "A" <= k <= "Z" for k in keys) and len(set(keys)) == len(keys):
            by_letter = dict(zip(keys, options.values(), strict=True))
            last = max(ord(k) for k in keys)
            options = [by_letter.get(chr(c), "") for c in range(ord("A"), last + 1)]
        else:
            options = list(options.values())
    size = getattr(options, "size", None) if hasattr(options, "tolist") else None
    if size is not None and size > MAX_OPTIONS:
        return (), "too_many_options"
    try:
        if hasattr(options, "__len__") and len(options) > MAX_OPTIONS:
            return (), "too_many_options"
        items = list(itertools.islice(iter(options), MAX_OPTIONS + 1)) if isinstance(options, Iterable) else None
    except TypeError:
        return (), ""
    if items is None:
        return (), ""
    if len(items) > MAX_OPTIONS:
        return (), "too_many_options"
    texts = []
    for item in items:
        if isinstance(item, str) and len(item) > MAX_OPTION_CHARS:
            return (), "option_too_long"
        text = "" if item is None else str(item) if isinstance(item, str | numbers.Number) else None
        if text is None or len(text) > MAX_OPTION_CHARS:
            return (), "option_too_long" if text is not None else "invalid_options"
        texts.append(text)
    return tuple(texts), ""
