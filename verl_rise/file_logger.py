"""Reading verl's file logger (``trainer.logger=[...,file]``, ``VERL_FILE_LOGGER_PATH``): one JSON line per logged
step, ``{"step": int, "data": {metric: value}}`` (verl/utils/tracking.py, ``FileLogger``).

verl's FileLogger truncates its file when it opens it, so the schedule gives each attempt of a resumable stage its
own file (``attempt-1.jsonl``, ``attempt-2.jsonl``, ...) in one directory; every reader here accepts that
directory as well as a single file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def metric_files(path: Path) -> list[Path]:
    """The file itself, or the ``*.jsonl`` files of a directory in attempt order (``attempt-2`` before ``-10``).

    Raises:
        FileNotFoundError: ``path`` is neither a file nor a directory.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        def order(p: Path):
            digits = re.findall(r"\d+", p.stem)
            return (int(digits[-1]) if digits else -1, p.name)

        return sorted(path.glob("*.jsonl"), key=order)
    raise FileNotFoundError(f"verl metrics not found: {path}")


def read_step_metrics(path: Path, missing_ok: bool = False) -> dict[int, dict]:
    """``{step: merged metrics}``, steps ascending ({} for a missing ``path`` when ``missing_ok``).

    Lines of one step merge (verl may log a step in several lines); a later attempt's lines replace an earlier
    attempt's at the same step, as a resumed run replays from its checkpoint.

    Raises:
        FileNotFoundError: ``path`` is missing (and not ``missing_ok``).
        ValueError: a line that is not verl's ``{"step", "data"}`` JSON (names file and line).
    """
    steps: dict[int, dict] = {}
    if missing_ok and not Path(path).exists():
        return steps
    for f in metric_files(path):
        seen: dict[int, dict] = {}
        for line_no, line in enumerate(f.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                step, data = int(entry["step"]), entry["data"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{f}:{line_no}: not a verl file-logger line ({type(exc).__name__}: {exc})") from None
            seen.setdefault(step, {}).update(data)
        steps.update(seen)
    return dict(sorted(steps.items()))


def merged_metrics(path: Path) -> dict:
    """Every logged metric merged over all steps (later steps win): what a validation-only run logged.

    Returns {} when ``path`` does not exist (the run logged nothing).
    """
    merged: dict = {}
    for data in read_step_metrics(path, missing_ok=True).values():
        merged.update(data)
    return merged
