"""Readers of each benchmark's own release layout, mapping its fields to VLMEvalKit's TSV column names.

Both paths (this module and :mod:`data_prep.benchmarks.tsv`) give a :class:`BenchmarkRecord` with the same column
names, so the scorer sees the same ``extra_info["vlmeval"]`` whichever file a user has. Only the columns VLMEvalKit's
evaluation reads are written (``BenchmarkSpec.native_columns``). Layouts (field names and types as released):

* MathVista testmini (github lupantech/MathVista ``data/testmini.json``): ``{pid: {question, image, choices
  (list|null), unit (str|null), precision (int|null), answer (str), question_type ("multi_choice"|"free_form"),
  answer_type ("text"|"integer"|"float"|"list"), pid, metadata {task, skills [..], ...}}}``; the prompt text is
  MathVista's query (``data/query.json``, ``{pid: query}``; a record's own ``query`` field, as the Hugging Face copy
  has, is used first). ``index`` = ``pid``.
* MathVerse testmini (github ZrrSkywalker/MathVerse ``data/testmini.json``): a list of ``{sample_index,
  problem_index, problem_version, question, image, answer, question_type ("multi-choice"|"free-form"), metadata
  {split, source, subject, subfield}, query_wo, query_cot}`` (plus ``question_for_eval`` in the Hugging Face copy),
  all five versions in one file; one version is kept (default "Vision Only"). ``question`` = ``query_wo`` (the
  leaderboard's "w/o CoT" input), ``index`` = ``sample_index``; a record without ``question_for_eval`` takes the
  question text of its problem's "Text Dominant" version (the full question, options included).
* DynaMath (github DynaMath/DynaMath ``dataset_generator``: one ``dataset.json`` per generated variant,
  ``{qid: {question, answer (str), image, answer_type ("float"|"multiple choice"|"free form"), subject, level}}``):
  files are given in variant order (variant 1 first). ``varid`` = the file's position, ``knowledge_level`` =
  ``level``, ``index`` = ``(varid - 1) * 501 + qid``, so the rows of variant 1 have ``index == qid`` (VLMEvalKit's
  worst-case accuracy keys variant 1's rows by index and looks them up by qid).
* WeMath testmini (github We-Math/We-Math ``data/testmini.json``): a list of ``{ID ("2steps_1"), split,
  "knowledge concept", question, option ("A. ..;B. ..; E. No correct answer"), answer (letter), image_path, key
  ("2steps_1"|"2steps_multi"|...), "question number" (int), "knowledge concept description"}``; the ``option`` string
  is split into the columns ``A``, ``B``, ... of VLMEvalKit's MCQ layout. ``index`` = 1-based position.
* LogicVista (github Yijia-Xiao/LogicVista ``data/dataset.json``): ``{id: {imagename, question, answer ("A" or
  "A, C"), reasoning, skill [..], broad_capability [..], specific_capability [..], ...}}``, images under
  ``data/images/``. ``index`` = 1-based position; list fields are written as Python list literals.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator

from data_prep.benchmarks.specs import BenchmarkRecord, Unreadable, get_spec
from data_prep.errors import BAD_ROW, RowRejected
from data_prep.images import read_image_bytes
from data_prep.pipeline import SourceRow
from data_prep.schema import LETTERS

#: DynaMath's number of seed questions: the index stride between variants.
DYNAMATH_SEEDS = 501
MATHVERSE_VERSIONS = ("Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only")


def _text(value: Any) -> str | None:
    """A release value as TSV text: None stays None, lists/dicts as Python literals (as VLMEvalKit's TSVs hold them)."""
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        return repr(value)
    return str(value)


def load_json(path: str | os.PathLike) -> Any:
    """Parse a release JSON file; ``ValueError`` naming the file when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _records(data: Any, path: str | os.PathLike) -> list[tuple[str | None, Any]]:
    if isinstance(data, dict):
        return list(data.items())
    if isinstance(data, list):
        return [(None, r) for r in data]
    raise ValueError(f"{path}: expected a JSON object or list, got {type(data).__name__}")


def _row(file: str, row: int, build: Callable[[], BenchmarkRecord]) -> SourceRow:
    try:
        record: object = build()
    except RowRejected as rej:
        record = Unreadable(rej)
    return SourceRow(file, row, record)


def _field(record: Any, key: str) -> Any:
    if not isinstance(record, dict):
        raise RowRejected("row", BAD_ROW, f"expected an object, got {type(record).__name__}")
    if key not in record:
        raise RowRejected(key, BAD_ROW, f"missing key {key!r}")
    return record[key]


def _image(value: Any, root: Path, field: str) -> list:
    paths = value if isinstance(value, list) else [value]
    return [read_image_bytes(p, root=root, encoding="path", field=field) for p in paths]


def iter_mathvista(
    path: str | os.PathLike, *, query: str | os.PathLike | None = None, root: str | os.PathLike | None = None
) -> Iterator[SourceRow]:
    """MathVista ``testmini.json`` (+ ``query.json``) -> records with the ``MathVista_MINI`` TSV columns.

    Args:
        path: ``data/testmini.json``.
        query: ``data/query.json`` (default: beside ``path`` when it exists).
        root: directory the ``image`` paths are relative to (default: ``path``'s directory).
    """
    path = Path(path)
    root = Path(root) if root else path.resolve().parent
    qpath = Path(query) if query else path.with_name("query.json")
    queries = load_json(qpath) if qpath.exists() else {}
    for row, (key, rec) in enumerate(_records(load_json(path), path)):

        def build(key=key, rec=rec) -> BenchmarkRecord:
            pid = str(_field(rec, "pid") if key is None else key)
            prompt = rec.get("query") or queries.get(pid)
            if not prompt:
                raise RowRejected("query", BAD_ROW, f"no query for pid {pid} (pass query.json)")
            choices = _field(rec, "choices")
            answer = _field(rec, "answer")
            letter = None
            if choices:
                matches = [k for k, c in enumerate(choices) if str(c) == str(answer)]
                letter = chr(65 + matches[0]) if matches else None
            meta = rec.get("metadata") or {}
            precision = rec.get("precision")
            cols = {
                "index": pid,
                "question": prompt,
                "answer": _text(answer),
                "question_type": _text(_field(rec, "question_type")),
                "answer_type": _text(_field(rec, "answer_type")),
                "choices": _text(choices),
                "answer_option": letter,
                # A TSV column with empty cells is read as floats: precision 1 is "1.0" there.
                "precision": None if precision is None else str(float(precision)),
                "unit": _text(rec.get("unit")),
                "task": _text(meta.get("task")),
                "skills": _text(meta.get("skills")),
                "pid": pid,
            }
            return BenchmarkRecord(cols, _image(_field(rec, "image"), root, "image"))

        yield _row(str(path), row, build)


def iter_mathverse(
    path: str | os.PathLike, *, version: str = "Vision Only", root: str | os.PathLike | None = None
) -> Iterator[SourceRow]:
    """MathVerse ``testmini.json`` -> records of one problem version with the ``MathVerse_MINI_*`` TSV columns.

    Rows of the other versions are not converted (they are other benchmarks); the rest of the file is only read for
    the "Text Dominant" question text that stands in for a missing ``question_for_eval``.
    """
    if version not in MATHVERSE_VERSIONS:
        raise ValueError(f"unknown MathVerse version {version!r}; expected one of {MATHVERSE_VERSIONS}")
    path = Path(path)
    root = Path(root) if root else path.resolve().parent
    records = [r for _, r in _records(load_json(path), path)]
    full_question = {
        str(r.get("problem_index")): r.get("question")
        for r in records
        if isinstance(r, dict) and r.get("problem_version") == "Text Dominant"
    }
    for row, rec in enumerate(records):
        if isinstance(rec, dict) and rec.get("problem_version") != version:
            continue

        def build(rec=rec) -> BenchmarkRecord:
            problem = str(_field(rec, "problem_index"))
            cols = {
                "index": _text(_field(rec, "sample_index")),
                "question": _text(_field(rec, "query_wo")),
                "answer": _text(_field(rec, "answer")),
                "question_type": _text(_field(rec, "question_type")),
                "question_for_eval": _text(rec.get("question_for_eval") or full_question.get(problem) or rec.get("question")),
                "query_cot": _text(rec.get("query_cot")),
                "problem_index": problem,
                "problem_version": _text(rec.get("problem_version")),
                "metadata": _text(rec.get("metadata")),
                "sample_index": _text(rec.get("sample_index")),
            }
            return BenchmarkRecord(cols, _image(_field(rec, "image"), root, "image"))

        yield _row(str(path), row, build)


def iter_dynamath(paths: list[str | os.PathLike], *, root: str | os.PathLike | None = None) -> Iterator[SourceRow]:
    """DynaMath variant files (variant 1 first) -> records with the ``DynaMath`` TSV columns.

    Args:
        paths: one ``dataset.json`` per variant, in variant order.
        root: directory the ``image`` paths are relative to (default: each file's directory).
    """
    for varid, file in enumerate(map(Path, paths), start=1):
        base = Path(root) if root else file.resolve().parent
        for row, (key, rec) in enumerate(_records(load_json(file), file)):

            def build(key=key, rec=rec, varid=varid, base=base) -> BenchmarkRecord:
                qid_text = str(key if key is not None else _field(rec, "qid"))
                if not qid_text.isdigit() or not 1 <= int(qid_text) <= DYNAMATH_SEEDS:
                    raise RowRejected("qid", BAD_ROW, f"seed question id {qid_text!r} is not in 1..{DYNAMATH_SEEDS}")
                qid = int(qid_text)
                cols = {
                    "index": str((varid - 1) * DYNAMATH_SEEDS + qid),
                    "question": _text(_field(rec, "question")),
                    "answer": _text(_field(rec, "answer")),
                    "answer_type": _text(_field(rec, "answer_type")),
                    "subject": _text(rec.get("subject")),
                    "knowledge_level": _text(rec.get("level", rec.get("knowledge_level"))),
                    "qid": str(qid),
                    "varid": str(varid),
                }
                return BenchmarkRecord(cols, _image(_field(rec, "image"), base, "image"))

            yield _row(str(file), row, build)


def _label(letter: str) -> re.Pattern:
    # "B." at the start or after a space/";", followed by text: "Shape ;C.;" (a letter in the text) is no label.
    return re.compile(rf"(?:^|(?<=[;\s])){letter}\s*[.．:]\s*(?=[^\s;])")


def split_options(text: str) -> list[str]:
    """WeMath's ``option`` string (``"A. 300, 400;B. 400, 300; E. No correct answer"``) -> option texts, A first.

    The release separates options with ``;`` mostly, with spaces sometimes (``"A. 45° B. 60° ;C. 120°"``), and option
    texts may hold ``;X.`` (``"to get Shape ;C.;"``): labels are found in order, A, then the first B label after it,
    and so on; an option's text runs to the next label. Labels after a gap in the letters stay in the last text.

    Raises:
        RowRejected: ``bad_row`` naming ``option`` when the string does not start with an ``A.`` label.
    """
    text = text.strip()
    starts: list[tuple[int, int]] = []  # (label start, text start)
    pos = 0
    for k in range(len(LETTERS)):
        m = _label(LETTERS[k]).search(text, pos)
        if m is None or (k == 0 and m.start() != 0):
            break
        starts.append((m.start(), m.end()))
        pos = m.end()
    if not starts:
        raise RowRejected("option", BAD_ROW, f"does not start with an 'A.' label: {text[:40]!r}")
    bounds = [s for s, _ in starts[1:]] + [len(text)]
    return [text[t:end].strip().rstrip(";").strip() for (_, t), end in zip(starts, bounds)]


def iter_wemath(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Iterator[SourceRow]:
    """WeMath ``testmini.json`` -> records with the ``WeMath`` TSV columns (options in columns ``A``..``H``)."""
    path = Path(path)
    root = Path(root) if root else path.resolve().parent
    letters = [c for c in get_spec("wemath").native_columns if len(c) == 1]
    for row, (_, rec) in enumerate(_records(load_json(path), path)):

        def build(row=row, rec=rec) -> BenchmarkRecord:
            options = split_options(str(_field(rec, "option")))
            if len(options) > len(letters):
                raise RowRejected("option", BAD_ROW, f"{len(options)} options; at most {len(letters)}")
            cols = {
                "index": str(row + 1),
                "ID": _text(_field(rec, "ID")),
                "split": _text(rec.get("split")),
                "knowledge concept": _text(rec.get("knowledge concept")),
                "question": _text(_field(rec, "question")),
                "option": _text(rec.get("option")),
                "answer": _text(_field(rec, "answer")),
                "key": _text(_field(rec, "key")),
                "question number": _text(rec.get("question number")),
                "knowledge concept description": _text(rec.get("knowledge concept description")),
            }
            cols.update({letter: (options[k] if k < len(options) else None) for k, letter in enumerate(letters)})
            return BenchmarkRecord(cols, _image(_field(rec, "image_path"), root, "image_path"))

        yield _row(str(path), row, build)


def iter_logicvista(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Iterator[SourceRow]:
    """LogicVista ``dataset.json`` -> records with the ``LogicVista`` TSV columns.

    Args:
        root: directory of the images (default: ``images/`` beside ``path``).
    """
    path = Path(path)
    root = Path(root) if root else path.resolve().parent / "images"
    for row, (key, rec) in enumerate(_records(load_json(path), path)):

        def build(row=row, key=key, rec=rec) -> BenchmarkRecord:
            cols = {
                "index": str(row + 1),
                "question": _text(_field(rec, "question")),
                "answer": _text(_field(rec, "answer")),
                "skill": _text(rec.get("skill")),
                "broad_capability": _text(rec.get("broad_capability")),
                "specific_capability": _text(rec.get("specific_capability")),
                "reasoning": _text(rec.get("reasoning")),
                "id": key if key is not None else _text(rec.get("id")),
            }
            return BenchmarkRecord(cols, _image(_field(rec, "imagename"), root, "imagename"))

        yield _row(str(path), row, build)


def iter_mathvision(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Iterator[SourceRow]:
    """MATH-Vision jsonl (github mathllm/MATH-V ``data/test.jsonl``) -> records with the ``MathVision`` TSV columns.

    The fields are read by :func:`data_prep.mathvision.problem_from_record` (the training converter); the prompt
    text is the one that converter writes (question, then the options and the letter instruction), since MATH-V's
    question text does not list the options. ``index`` = MATH-V's ``id``, ``category`` = ``subject``.
    """
    from data_prep.mathvision import problem_from_record as mathv_problem
    from data_prep.records import iter_jsonl
    from data_prep.schema import render_user_content

    base = Path(root) if root else Path(path).resolve().parent
    for src in iter_jsonl(path):

        def build(rec=src.record) -> BenchmarkRecord:
            if isinstance(rec, BaseException):
                raise RowRejected("row", BAD_ROW, f"{type(rec).__name__}: {rec}")
            problem = mathv_problem(rec, base)
            cols = {
                "index": _text(_field(rec, "id")),
                "question": render_user_content(problem.question, [str(o) for o in problem.options]),
                "answer": problem.answer,
                "choices": repr([str(o) for o in problem.options]),
                "category": _text(rec.get("subject")),
                "level": _text(rec.get("level")),
                "solution": _text(rec.get("solution")),
                "id": _text(rec.get("id")),
            }
            return BenchmarkRecord(cols, problem.images)

        yield _row(src.file, src.row, build)


#: benchmark key -> its native reader (first argument: the release file, or the list of DynaMath variant files).
NATIVE_READERS: dict[str, Callable[..., Iterator[SourceRow]]] = {
    "mathvista": iter_mathvista,
    "mathvision": iter_mathvision,
    "mathverse": iter_mathverse,
    "dynamath": iter_dynamath,
    "wemath": iter_wemath,
    "logicvista": iter_logicvista,
}
