"""Per-benchmark field handling: VLMEvalKit TSV columns -> prompt text, ground truth, ``extra_info``.

Every converter of :mod:`data_prep.benchmarks` (the VLMEvalKit TSV reader and the readers of each benchmark's own
release layout) produces a :class:`BenchmarkRecord`: the benchmark's VLMEvalKit TSV columns as text, plus the images.
:func:`problem_from_record` turns it into a :class:`~data_prep.schema.Problem` whose ``extra_info`` carries what the
scorer (``verl_rise.evaluation``) needs, as fixed in the evaluation contract::

    extra_info["benchmark"] = "mathvista" | "mathvision" | ...     (the keys of :data:`BENCHMARKS`)
    extra_info["index"]     = the TSV ``index`` (an integer in all six benchmarks)
    extra_info["vlmeval"]   = {column: str | None}: every TSV column except ``image``/``image_path``

The user message is the text VLMEvalKit's ``build_prompt`` gives the model for that dataset (read from
``vlmeval/dataset/image_vqa.py``, ``image_mcq.py``, ``dynamath.py``), with the images in front, so our generations
match the leaderboard's prompts; DynaMath is the exception (see :func:`_dynamath_prompt`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from data_prep.errors import ANSWER_NOT_IN_OPTIONS, BAD_ROW, EMPTY_ANSWER, RowRejected
from data_prep.images import RawImage
from data_prep.schema import LETTERS, Problem, normalize_choice_answer

#: TSV columns that hold images, never copied into ``extra_info["vlmeval"]`` (VLMEvalKit drops them too).
IMAGE_COLUMNS = ("image", "image_path")


@dataclass
class BenchmarkRecord:
    """One benchmark problem as a reader produced it.

    Attributes:
        columns: the VLMEvalKit TSV columns (``index`` included; no image columns); values are text, None when the
            cell is empty.
        images: the problem's images, already read, in order.
    """

    columns: dict[str, str | None]
    images: list[RawImage] = field(default_factory=list)


@dataclass(frozen=True)
class Unreadable:
    """A row a reader could not turn into a :class:`BenchmarkRecord`; converting it raises ``error`` (its reason
    reaches the rejects file unchanged)."""

    error: RowRejected


@dataclass(frozen=True)
class BenchmarkSpec:
    """How one benchmark's TSV columns become a prompt and a ground truth.

    Attributes:
        key: our benchmark key (``mathvista``, ...).
        data_source: the row's ``data_source``: VLMEvalKit's dataset name of the leaderboard split.
        dataset_names: VLMEvalKit dataset names this spec reads (the leaderboard split first).
        required: columns a row must have (non-empty) to be converted.
        native_columns: the columns the native-layout reader writes (the TSV columns the VLMEvalKit scorer reads).
        build: ``columns -> (prompt text, ground truth, options, answer_type)``.
    """

    key: str
    data_source: str
    dataset_names: tuple[str, ...]
    required: tuple[str, ...]
    native_columns: tuple[str, ...]
    build: Callable[[Mapping[str, str | None]], tuple[str, str, list[str], str]]


def literal_list(text: str | None, column: str) -> list[str]:
    """A TSV cell holding a Python list literal (``"['3', '4']"``, as VLMEvalKit's TSVs store choices) as texts.

    Returns:
        the list's items as strings; ``[]`` for an empty cell or ``"[]"``/``"None"``.

    Raises:
        RowRejected: ``bad_row`` naming ``column`` when the cell is not a list literal.
    """
    if text is None or text.strip() in ("", "None", "nan", "[]"):
        return []
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as exc:
        raise RowRejected(column, BAD_ROW, f"not a Python list literal: {text[:60]!r}") from exc
    if not isinstance(value, (list, tuple)):
        raise RowRejected(column, BAD_ROW, f"expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


def _need(columns: Mapping[str, str | None], name: str) -> str:
    value = columns.get(name)
    if value is None or not value.strip():
        reason = EMPTY_ANSWER if name in ("answer", "answer_option") else BAD_ROW
        raise RowRejected(name, reason, f"column {name!r} is missing or empty")
    return value


def _mathvista(cols: Mapping[str, str | None]) -> tuple[str, str, list[str], str]:
    # VLMEvalKit's MathVista uses the default prompt: the `question` column, which holds MathVista's query (hint,
    # question and "Choices: (A) ..."). Choice answers are option texts; answer_option is their letter.
    question, answer = _need(cols, "question"), _need(cols, "answer")
    if _need(cols, "question_type") == "multi_choice":
        options = literal_list(cols.get("choices"), "choices")
        if not options:
            raise RowRejected("choices", BAD_ROW, "multi_choice row without choices")
        letter = cols.get("answer_option")
        try:
            gold = normalize_choice_answer(letter or answer, options, allow_option_text=True)
        except RowRejected as exc:
            raise RowRejected("answer", ANSWER_NOT_IN_OPTIONS, exc.detail) from None
        return question, gold, options, "choice"
    return question, answer, [], "free_form"


def _mathvision(cols: Mapping[str, str | None]) -> tuple[str, str, list[str], str]:
    question, answer = _need(cols, "question"), _need(cols, "answer")
    options = literal_list(cols.get("choices"), "choices")
    if options:
        return question, normalize_choice_answer(answer, options, allow_option_text=True), options, "choice"
    return question, answer, [], "free_form"


def _mathverse(cols: Mapping[str, str | None]) -> tuple[str, str, list[str], str]:
    # The options of multi-choice rows are in the question text or, for Vision Only, drawn in the picture.
    kind = "choice" if _need(cols, "question_type") == "multi-choice" else "free_form"
    return _need(cols, "question"), _need(cols, "answer"), [], kind


def _dynamath_prompt(cols: Mapping[str, str | None]) -> str:
    # VLMEvalKit's "DynaMath" appends a guide asking for a JSON answer; "DynaMath_noprompt" sends this text alone.
    # We send the question alone: the Metis-RISE system prompt already fixes the answer format.
    return f"## Question\n {_need(cols, 'question')}"


def _dynamath(cols: Mapping[str, str | None]) -> tuple[str, str, list[str], str]:
    kind = "choice" if _need(cols, "answer_type") == "multiple choice" else "free_form"
    return _dynamath_prompt(cols), _need(cols, "answer"), [], kind


def option_columns(cols: Mapping[str, str | None]) -> list[str]:
    """Option texts of an MCQ-layout row: the non-empty columns ``A``, ``B``, ... in order (VLMEvalKit's MCQ TSVs)."""
    options = []
    for letter in LETTERS:
        value = cols.get(letter)
        if value is None or not value.strip():
            break
        options.append(value)
    return options


def _wemath(cols: Mapping[str, str | None]) -> tuple[str, str, list[str], str]:
    # VLMEvalKit's WeMath.build_prompt: optional hint, "Question: ...", then "Options:" and one "A. text" per line.
    question = _need(cols, "question")
    options = option_columns(cols)
    if not options:
        raise RowRejected("A", BAD_ROW, "no option columns A, B, ...")
    text = f"Hint: {cols['hint']}\n" if cols.get("hint") else ""
    text += f"Question: {question}\n" + "Options:\n" + "".join(f"{k}. {o}\n" for k, o in zip(LETTERS, options))
    return text, normalize_choice_answer(_need(cols, "answer"), options), options, "choice"


_LETTER_LIST_RE = re.compile(r"^[A-Z](\s*,\s*[A-Z])*$")


def _logicvista(cols: Mapping[str, str | None]) -> tuple[str, str, list[str], str]:
    # Answers are option letters, several joined by ", " when several are right (VLMEvalKit splits on ", ").
    answer = _need(cols, "answer").strip()
    if not _LETTER_LIST_RE.match(answer.upper()):
        raise RowRejected("answer", ANSWER_NOT_IN_OPTIONS, f"{answer!r} is not a list of option letters")
    return _need(cols, "question"), answer, [], "choice"


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.key: spec
    for spec in (
        BenchmarkSpec(
            "mathvista", "MathVista_MINI", ("MathVista_MINI",),
            ("index", "question", "answer", "question_type", "answer_type"),
            ("index", "question", "answer", "question_type", "answer_type", "choices", "answer_option",
             "precision", "unit", "task", "skills", "pid"),
            _mathvista,
        ),
        BenchmarkSpec(
            "mathvision", "MathVision", ("MathVision", "MathVision_MINI"),
            ("index", "question", "answer"),
            ("index", "question", "answer", "choices", "category", "level", "solution", "id"),
            _mathvision,
        ),
        BenchmarkSpec(
            "mathverse", "MathVerse_MINI_Vision_Only", ("MathVerse_MINI_Vision_Only", "MathVerse_MINI"),
            ("index", "question", "answer", "question_type"),
            ("index", "question", "answer", "question_type", "question_for_eval", "query_cot", "problem_index",
             "problem_version", "metadata", "sample_index"),
            _mathverse,
        ),
        BenchmarkSpec(
            "dynamath", "DynaMath", ("DynaMath",),
            ("index", "question", "answer", "answer_type", "qid", "varid"),
            ("index", "question", "answer", "answer_type", "subject", "knowledge_level", "qid", "varid"),
            _dynamath,
        ),
        BenchmarkSpec(
            "wemath", "WeMath", ("WeMath",),
            ("index", "question", "answer", "ID", "key"),
            ("index", "ID", "split", "knowledge concept", "question", "option", "answer", "key", "question number",
             "knowledge concept description", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J"),
            _wemath,
        ),
        BenchmarkSpec(
            "logicvista", "LogicVista", ("LogicVista",),
            ("index", "question", "answer"),
            ("index", "question", "answer", "skill", "broad_capability", "specific_capability", "reasoning", "id"),
            _logicvista,
        ),
    )
}

#: data_source -> benchmark key (VLMEvalKit dataset names, and the training converter's MATH-Vision name).
DATA_SOURCES: dict[str, str] = {name: s.key for s in BENCHMARKS.values() for name in s.dataset_names}


def get_spec(benchmark: str) -> BenchmarkSpec:
    """The spec of a benchmark key; ``ValueError`` naming the known keys for an unknown one."""
    try:
        return BENCHMARKS[benchmark]
    except KeyError:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}") from None


def parse_index(value: str | None) -> int:
    """The TSV ``index`` as an int (``"12"``, ``"12.0"``).

    Raises:
        RowRejected: ``bad_row`` naming ``index`` for an empty or non-integer index.
    """
    text = (value or "").strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not text or number != number or number != int(number):
        raise RowRejected("index", BAD_ROW, f"index must be an integer, got {value!r}")
    return int(number)


def problem_from_record(spec: BenchmarkSpec, record: BenchmarkRecord | Unreadable) -> Problem:
    """One benchmark record -> :class:`Problem` with the scorer's fields in ``extra_info``.

    Raises:
        RowRejected: ``record.error`` for an :class:`Unreadable` record; ``bad_row`` (a required column missing, a
            bad index or choices cell), ``empty_answer``, ``answer_not_in_options``; placeholder and image checks
            follow in the pipeline.
    """
    if isinstance(record, Unreadable):
        raise record.error
    cols = record.columns
    for name in spec.required:
        _need(cols, name)
    index = parse_index(cols["index"])
    text, gold, options, answer_type = spec.build(cols)
    return Problem(
        question=text,
        answer=gold,
        options=[],  # the prompt text already shows the options as VLMEvalKit words them
        images=list(record.images),
        extra_info={
            "index": index,
            "options": options,
            "answer_type": answer_type,
            "benchmark": spec.key,
            "vlmeval": {k: v for k, v in cols.items() if k not in IMAGE_COLUMNS},
        },
    )

