"""Expert trajectories from a JSONL file: one record per response, mapped to our prompts by a key.

Record fields (names configurable): the response text (``response``), optionally the answer an evaluation harness
extracted (``model_answer``), and the key:

* ``--expert-key prompt_id`` (default): the record carries our ``extra_info.prompt_id`` in a field of that name
  (any field name can be given);
* ``--expert-key mathvision``: the record is a MATH-Vision problem (``question``, ``options``, ``answer``, ``image``
  relative to ``--expert-image-root``), e.g. the MATH-V ``outputs/`` traces; its prompt id is rebuilt exactly as
  data_prep computes it: ``finalize_problem(mathvision.problem_from_record(record, root)).prompt_id``.

Every line becomes a :class:`~verl_rise.sft_data.records.Candidate`, or a ``bad_record`` reject when the line is not
UTF-8, not a JSON object, or its key cannot be computed (the reject names the file and line).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from data_prep import mathvision
from data_prep.errors import RowRejected
from data_prep.schema import finalize_problem
from data_prep.records import read_jsonl_lines
from verl_rise.sft_data.records import BAD_RECORD, EXPERT_FILE, Candidate, Reject

MATHVISION_KEY = "mathvision"


def record_prompt_id(record: dict, key: str, image_root: Path) -> str:
    """The prompt id an expert record refers to (see the module docstring for ``key``).

    Raises:
        ValueError: the key field is missing/empty, or the MATH-Vision problem cannot be rebuilt (message says why).
    """
    if key == MATHVISION_KEY:
        try:
            return finalize_problem(mathvision.problem_from_record(record, image_root)).prompt_id
        except RowRejected as exc:
            raise ValueError(f"cannot rebuild the MATH-Vision prompt id: {exc}") from exc
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {key!r} is missing or empty")
    return value


def read_expert_file(
    path: str | os.PathLike,
    *,
    key: str = "prompt_id",
    image_root: str | os.PathLike | None = None,
    response_field: str = "response",
    model_answer_field: str | None = "model_answer",
) -> Iterator[tuple[Candidate, str | None] | Reject]:
    """Read an expert JSONL file.

    Args:
        path: the JSONL file.
        key: ``mathvision`` or the name of the field holding our prompt id.
        image_root: directory MATH-Vision ``image`` paths are relative to (default: the file's directory).
        response_field: field of the response text.
        model_answer_field: field of an extracted answer (None: not used).

    Yields:
        ``(candidate, model_answer)`` per readable line (``candidate.origin`` names the file, 1-based line, the
        record's ``id`` and ``model`` when present), or a ``bad_record`` :class:`Reject` (origin: file, line;
        detail: why). Every non-blank line yields exactly one item.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expert file not found: {path}")
    root = Path(image_root) if image_root is not None else path.parent
    for item in read_jsonl_lines(path):
        origin = {"file": str(path), "line": item.line}
        if item.record is None:
            yield Reject(Candidate(EXPERT_FILE, "", item.text, origin), BAD_RECORD, item.error or "")
            continue
        record = item.record
        origin.update({k: record[k] for k in ("id", "model") if k in record})
        response = record.get(response_field)
        try:
            prompt_id = record_prompt_id(record, key, root)
        except ValueError as exc:
            yield Reject(Candidate(EXPERT_FILE, "", response, origin), BAD_RECORD, f"{path}:{item.line}: {exc}")
            continue
        model_answer = record.get(model_answer_field) if model_answer_field else None
        yield Candidate(EXPERT_FILE, prompt_id, response, origin), model_answer
