"""Read a JSONL file line by line without letting one broken line stop the read.

Files users hand us (expert traces, responses to score) are saved by many tools: a line may be cut mid-character,
be Latin-1, or not be JSON at all. Decoding per line (rather than the whole file as UTF-8) keeps every other line
readable and lets the caller turn the broken one into a rejected row naming the file, the line and the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class JsonlLine:
    """One non-blank line of a JSONL file.

    Attributes:
        line: 1-based line number in the file.
        text: the line's text without surrounding whitespace (undecodable bytes shown as U+FFFD).
        record: the parsed JSON object, or None when ``error`` is set.
        error: why the line is unusable: ``not UTF-8: ...``, ``invalid JSON: ...`` or ``not a JSON object ...``;
            None for a good line.
    """

    line: int
    text: str
    record: dict[str, Any] | None
    error: str | None


def read_jsonl_lines(path: str | os.PathLike) -> Iterator[JsonlLine]:
    """Yield every non-blank line of ``path`` as a :class:`JsonlLine`; never raises for bad content.

    A UTF-8 byte order mark at the start of the file is ignored. Lines are split on ``\\n`` only (a JSON text
    cannot hold a raw newline), and read one at a time, so memory stays flat for large files.

    Raises:
        OSError: the file cannot be opened or read (e.g. FileNotFoundError).
    """
    with Path(path).open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                bad = raw[exc.start:exc.start + 1].hex()
                yield JsonlLine(line_no, raw.decode("utf-8", errors="replace").strip(), None,
                                f"not UTF-8: byte 0x{bad} at byte offset {exc.start} of the line ({exc.reason})")
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield JsonlLine(line_no, text, None, f"invalid JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield JsonlLine(line_no, text, None, f"not a JSON object (a JSON {type(value).__name__})")
                continue
            yield JsonlLine(line_no, text, value, None)
