"""Labelled cases for the Metis-RISE reward functions (accuracy on the last ``\\boxed{}``, and format).

The cases are an independent test set: each row holds a full model response, its ground truth and the score
the reward must give under the labelling rules in ``README.md`` (written from the reward's spec, not from any
implementation). Rows live in one JSONL file per category beside this module; this module only reads and
validates them, so reward tests can parametrize over them::

    from benchmarks.reward_cases import load_cases
    @pytest.mark.parametrize("case", load_cases("numbers"), ids=lambda c: c["id"])
    def test_accuracy(case): ...

Source of the semantics: Metis-RISE (arXiv 2506.13056), reward = accuracy + format; the detailed rules are
the project's reward spec, summarised in ``README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).resolve().parent

#: Every category, i.e. every ``<category>.jsonl`` file in CASES_DIR. A row's category must name its file.
CATEGORIES = (
    "numbers",
    "choice",
    "units_percent",
    "structures",
    "symbolic",
    "extraction",
    "format",
    "realistic",
    "expert_traces",
    "adversarial",
)

#: Key -> allowed Python types of its value (``type(None)`` where null is allowed). No other keys are allowed.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "category": (str,),
    "ground_truth": (str,),
    "response": (str,),
    "options": (list, type(None)),
    "expected_acc": (int,),
    "expected_format": (int, type(None)),
    "note": (str,),
}


def _check_row(row: Any, where: str) -> dict:
    """Validate one decoded row; return it unchanged or raise ValueError naming ``where`` and the field."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: row must be a JSON object, got {type(row).__name__}")
    missing = [key for key in FIELD_TYPES if key not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(row) - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for key, types in FIELD_TYPES.items():
        value = row[key]
        # bool is an int subclass; a label written as true/false is a typo, not a score.
        if isinstance(value, bool) or not isinstance(value, types):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"{where}: field '{key}' must be {allowed}, got {type(value).__name__}")
    for key in ("id", "category", "ground_truth", "note"):
        if not row[key].strip():
            raise ValueError(f"{where}: field '{key}' must not be empty")
    if row["expected_acc"] not in (0, 1):
        raise ValueError(f"{where}: field 'expected_acc' must be 0 or 1, got {row['expected_acc']}")
    if row["expected_format"] not in (0, 1, None):
        raise ValueError(f"{where}: field 'expected_format' must be 0, 1 or null, got {row['expected_format']}")
    options = row["options"]
    if options is not None and (not options or not all(isinstance(o, str) and o.strip() for o in options)):
        raise ValueError(f"{where}: field 'options' must be null or a non-empty list of non-empty strings")
    if not row["id"].startswith(row["category"] + "-"):
        raise ValueError(f"{where}: field 'id' must start with '{row['category']}-', got {row['id']!r}")
    return row


def _read_file(path: Path) -> list[tuple[str, dict]]:
    """Rows of one JSONL file as (location, row); blank lines are skipped."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
            row = _check_row(row, where)
            if row["category"] != path.stem:
                raise ValueError(f"{where}: field 'category' is {row['category']!r} but the file is {path.name}")
            rows.append((where, row))
    return rows


def load_cases(category: str | None = None, directory: str | Path | None = None) -> list[dict]:
    """Load and validate the labelled reward cases.

    Args:
        category: one of CATEGORIES to load only that file's rows; None loads every ``*.jsonl`` file in
            ``directory``.
        directory: folder holding the JSONL files; defaults to this package's folder.

    Returns:
        The rows as dicts with keys id, category, ground_truth, response, options (list[str] or None),
        expected_acc (0/1), expected_format (0/1/None), note; in file order, files sorted by name.

    Raises:
        ValueError: unknown category, missing file, or a bad row (invalid JSON, missing/unknown field, wrong
            type or value, id not prefixed by its category, category not matching its file, duplicate id);
            the message names the file, the line and the field.
    """
    folder = Path(directory) if directory is not None else CASES_DIR
    if category is not None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
        path = folder / f"{category}.jsonl"
        if not path.is_file():
            raise ValueError(f"{path}: case file for category {category!r} not found")
        paths = [path]
    else:
        paths = sorted(folder.glob("*.jsonl"))
    seen: dict[str, str] = {}
    cases = []
    for path in paths:
        for where, row in _read_file(path):
            if row["id"] in seen:
                raise ValueError(f"{where}: field 'id' {row['id']!r} duplicates the row at {seen[row['id']]}")
            seen[row["id"]] = where
            cases.append(row)
    return cases
