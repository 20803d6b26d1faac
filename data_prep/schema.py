"""The RL parquet row contract: prompt text, image placeholders, answer checks, the stable prompt id, the row dict.

One row (columns as verl 0.9.1's ``RLHFDataset`` reads them, ``verl/utils/dataset/rl_dataset.py``)::

    data_source   str
    prompt        [{"role": "system", "content": METIS_RISE_SYSTEM_PROMPT},
                   {"role": "user", "content": "... <image> ... \\n\\nOptions:\\nA. ...\\n..."}]
    images        [{"bytes": b"...", "path": str | None}, ...]   one per <image>, in order
    ability       "math"
    reward_model  {"style": "rule", "ground_truth": str}           a letter for choice rows
    extra_info    {"prompt_id": str, "index": int, "split": str, "question": str,
                   "options": [str], "answer": str, "answer_type": "choice" | "free_form"}

Converters build a :class:`Problem` per input row; :func:`finalize_problem` places the placeholders and checks
it; :func:`build_row` turns it plus its prepared images into the row dict.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
import string
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from data_prep.errors import (
    ANSWER_NOT_IN_OPTIONS,
    BAD_ROW,
    EMPTY_ANSWER,
    EMPTY_QUESTION,
    PLACEHOLDER_MISMATCH,
    RowRejected,
)
from data_prep.images import RawImage

#: verl's image placeholder: each occurrence in message text consumes the next entry of ``images``.
IMAGE_PLACEHOLDER = "<image>"
#: MATH-Vision style numbered markers (``<image1>``, ``<image2>``, ...).
IMAGE_MARKER_RE = re.compile(r"<image(\d+)>")
#: Option letters: option i (0-based) is letter LETTERS[i].
LETTERS = string.ascii_uppercase
#: Appended to choice prompts so the policy answers with the letter the rule-based reward compares against.
CHOICE_INSTRUCTION = "Answer with the letter of the correct option."
#: Bump when the prompt-id recipe changes: old and new ids must never collide silently.
PROMPT_ID_VERSION = 1

ANSWER_TYPES = ("choice", "free_form")

ARROW_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("prompt_id", pa.string()),
                    ("index", pa.int64()),
                    ("split", pa.string()),
                    ("question", pa.string()),
                    ("options", pa.list_(pa.string())),
                    ("answer", pa.string()),
                    ("answer_type", pa.string()),
                ]
            ),
        ),
    ]
)


@dataclass
class Problem:
    """One math problem as a converter read it, before checks.

    Attributes:
        question: question text. May hold verl ``<image>`` placeholders, MATH-Vision ``<imageN>`` markers, or
            neither (then the placeholders go in front).
        answer: ground-truth answer; for choice problems the option letter (``"A"``, ...).
        options: option texts, option A first; empty for free-form problems.
        images: encoded images in the order of their index (image 1 first).
        extra_info: keys written into the row's ``extra_info`` over the defaults (a benchmark's scoring fields);
            the schema given to :func:`data_prep.pipeline.convert` must have them.
    """

    question: str
    answer: str
    options: list[str] = field(default_factory=list)
    images: list[RawImage] = field(default_factory=list)
    extra_info: dict[str, Any] = field(default_factory=dict)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number_text(value: Any, field: str, what: str) -> str:
    # Numbers are written in plain positional notation: "1e-07" would reach the verifier as Euler's number times -7.
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
        kind = type(value).__name__
        raise RowRejected(field, BAD_ROW, f"{what} must be text or a number, got {kind} {_short(value)}")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    number = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if not number.is_finite():
        raise RowRejected(field, BAD_ROW, f"{what} is not a finite number: {_short(value)}")
    return format(number, "f")


def answer_text(value: Any, field: str = "answer") -> str:
    """The ground-truth answer as text: strings as they are, numbers in positional notation, None as ``""``.

    Args:
        value: the input value (JSON or parquet scalar).
        field: the input field name, for the reject record.

    Returns:
        the text (``""`` for None; :func:`finalize_problem` rejects it as ``empty_answer``).

    Raises:
        RowRejected: ``bad_row`` naming ``field`` for a list, dict, bool, NaN or infinity (or any other
            non-scalar): ``str()`` of those is an answer no policy can produce.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _number_text(value, field, "answer")


def option_texts(values: Any, field: str = "options") -> list[str]:
    """Option values as texts (option A first), with the same rules as :func:`answer_text`.

    Raises:
        RowRejected: ``bad_row`` naming ``field`` and the 1-based option number when ``values`` is not a list or
            an option is null, empty, nested (list/dict), a bool, NaN or infinite.
    """
    if not isinstance(values, (list, tuple)):
        raise RowRejected(field, BAD_ROW, f"options must be a list, got {type(values).__name__}")
    texts = []
    for k, value in enumerate(values, 1):
        if value is None:
            raise RowRejected(field, BAD_ROW, f"option {k} is null")
        text = value if isinstance(value, str) else _number_text(value, field, f"option {k}")
        if not text.strip():
            raise RowRejected(field, BAD_ROW, f"option {k} is empty")
        texts.append(text)
    return texts


def place_image_placeholders(question: str, num_images: int) -> tuple[str, list[int]]:
    """Turn the question's image references into verl ``<image>`` placeholders.

    Rules, in order:

    * ``<imageN>`` markers (MATH-Vision): with ONE image (MATH-Vision ships one composite picture per problem even
      when the text names several sub-figures) the first marker becomes ``<image>`` and later markers stay as
      literal text, as in MATH-Vision's own prompts. With as many images as distinct markers ``1..N``, the first
      occurrence of each marker becomes ``<image>`` and repeats stay literal; the images are reordered to the
      order of first occurrence.
    * text that already holds ``<image>`` placeholders is kept as is;
    * no references at all: one ``<image>`` per image goes in front of the text.

    Args:
        question: the raw question text.
        num_images: number of images the row carries.

    Returns:
        ``(text, order)``: the text with placeholders and the image order (``order[k]`` = index into the input
        images of the k-th placeholder).

    Raises:
        RowRejected: ``placeholder_mismatch`` when the references and the images cannot be matched.
    """
    markers = IMAGE_MARKER_RE.findall(question)
    if markers:
        if IMAGE_PLACEHOLDER in question:
            raise RowRejected("question", PLACEHOLDER_MISMATCH, "mixes <image> placeholders and <imageN> markers")
        first_seen: list[int] = []
        for m in markers:
            if int(m) not in first_seen:
                first_seen.append(int(m))
        if num_images == 1:
            wanted = {first_seen[0]}
        elif sorted(first_seen) == list(range(1, num_images + 1)):
            wanted = set(first_seen)
        else:
            raise RowRejected(
                "question",
                PLACEHOLDER_MISMATCH,
                f"markers {['<image%d>' % k for k in first_seen]} do not match {num_images} image(s)",
            )
        done: set[int] = set()

        def sub(match: re.Match) -> str:
            k = int(match.group(1))
            if k in wanted and k not in done:
                done.add(k)
                return IMAGE_PLACEHOLDER
            return match.group(0)

        text = IMAGE_MARKER_RE.sub(sub, question)
        order = [k - 1 for k in first_seen if k in wanted] if num_images > 1 else [0]
        return text, order
    count = question.count(IMAGE_PLACEHOLDER)
    if count == 0 and num_images > 0:
        return IMAGE_PLACEHOLDER * num_images + "\n" + question, list(range(num_images))
    if count != num_images:
        raise RowRejected(
            "question", PLACEHOLDER_MISMATCH, f"{count} <image> placeholder(s) but {num_images} image(s)"
        )
    return question, list(range(num_images))


def normalize_choice_answer(answer: str, options: list[str], *, allow_option_text: bool = False) -> str:
    """The option letter a choice answer names.

    Accepts ``"B"``, ``"b"``, ``"(B)"``, ``"B."``; with ``allow_option_text`` also the exact text of an option.

    Returns:
        the upper-case letter.

    Raises:
        RowRejected: ``answer_not_in_options`` when it names none of the ``len(options)`` letters.
    """
    letters = LETTERS[: len(options)]
    cand = answer.strip().strip("().").strip().upper()
    if len(cand) == 1 and cand in letters:
        return cand
    if allow_option_text:
        for letter, text in zip(letters, options):
            if _nfc(text) == _nfc(answer):
                return letter
    raise RowRejected("answer", ANSWER_NOT_IN_OPTIONS, f"{answer!r} is not one of {', '.join(letters)}")


@dataclass(frozen=True)
class CheckedProblem:
    """A :class:`Problem` after :func:`finalize_problem`: placeholders placed, answer checked, id computed."""

    question: str
    options: list[str]
    answer: str
    answer_type: str
    images: list[RawImage]
    prompt_id: str
    extra_info: dict[str, Any] = field(default_factory=dict)


def compute_prompt_id(question: str, options: list[str], answer: str, image_bytes: list[bytes]) -> str:
    """Stable content hash of a problem: the same problem gets the same id in every run and every file.

    SHA-256 over a canonical JSON of the recipe version, the question (NFC, stripped), the option texts, the
    answer and the SHA-256 of each image's *input* bytes (before any resize, so the id does not depend on the
    pixel range chosen). The pass-rate tracker keys on this id.

    Returns:
        32 lowercase hex characters (the first 128 bits of the digest).
    """
    payload = {
        "v": PROMPT_ID_VERSION,
        "question": _nfc(question),
        "options": [_nfc(o) for o in options],
        "answer": _nfc(answer),
        "images": [hashlib.sha256(b).hexdigest() for b in image_bytes],
    }
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


def finalize_problem(problem: Problem, *, allow_option_text: bool = False) -> CheckedProblem:
    """Place placeholders, check the answer, compute the prompt id.

    Raises:
        RowRejected: ``placeholder_mismatch``, ``empty_question``, ``empty_answer``, ``answer_not_in_options``,
            ``bad_row`` (more than 26 options; a garbage answer or option, see :func:`answer_text`).
    """
    if not isinstance(problem.question, str):
        raise RowRejected("question", BAD_ROW, f"question must be text, got {type(problem.question).__name__}")
    question, order = place_image_placeholders(problem.question, len(problem.images))
    images = [problem.images[i] for i in order]
    if not _nfc(question.replace(IMAGE_PLACEHOLDER, "")) and not images:
        # An image-only question is legitimate (MATH-Vision has problems whose whole text is in the picture).
        raise RowRejected("question", EMPTY_QUESTION, "no question text and no image")
    answer = _nfc(answer_text(problem.answer))
    if not answer:
        raise RowRejected("answer", EMPTY_ANSWER, "answer is empty")
    options = [_nfc(o) for o in option_texts(problem.options)]
    if len(options) > len(LETTERS):
        raise RowRejected("options", BAD_ROW, f"{len(options)} options; at most {len(LETTERS)} are supported")
    if any(IMAGE_PLACEHOLDER in o for o in options):
        raise RowRejected("options", PLACEHOLDER_MISMATCH, "an option holds an <image> placeholder")
    if options:
        answer = normalize_choice_answer(answer, options, allow_option_text=allow_option_text)
    question = _nfc(question)
    return CheckedProblem(
        question=question,
        options=options,
        answer=answer,
        answer_type="choice" if options else "free_form",
        images=images,
        prompt_id=compute_prompt_id(question, options, answer, [im.data for im in images]),
        extra_info=dict(problem.extra_info),
    )


def render_user_content(question: str, options: list[str]) -> str:
    """The user message: the question, then the options (``A. ...`` lines) and the choice instruction.

    When every option is just its own letter (MATH-Vision: the choices are drawn in the picture), the letters are
    listed on one line instead of ``A. A``.
    """
    if not options:
        return question
    letters = LETTERS[: len(options)]
    if all(o == letter for o, letter in zip(options, letters)):
        block = "Options: " + ", ".join(letters)
    else:
        block = "Options:\n" + "\n".join(f"{letter}. {o}" for letter, o in zip(letters, options))
    return f"{question}\n\n{block}\n{CHOICE_INSTRUCTION}"


def build_row(
    problem: CheckedProblem,
    images: list[dict[str, Any]],
    *,
    index: int,
    split: str,
    data_source: str,
    system_prompt: str | None,
    ability: str = "math",
) -> dict[str, Any]:
    """The parquet row dict for a checked problem (schema: :data:`ARROW_SCHEMA`).

    Args:
        problem: from :func:`finalize_problem`.
        images: stored image values (``{"bytes", "path"}``), in placeholder order.
        index: position of the row in the output file.
        split: e.g. ``"train"``, ``"test"``.
        data_source: the name the reward function and metrics group by.
        system_prompt: system message text; None or "" leaves the system message out.
        ability: verl's ``ability`` column.
    """
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": render_user_content(problem.question, problem.options)})
    return {
        "data_source": data_source,
        "prompt": messages,
        "images": images,
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": problem.answer},
        "extra_info": {
            "prompt_id": problem.prompt_id,
            "index": index,
            "split": split,
            "question": problem.question,
            "options": list(problem.options),
            "answer": problem.answer,
            "answer_type": problem.answer_type,
            **problem.extra_info,
        },
    }
