"""Streaming readers for tabular inputs: JSONL (one object per line) and parquet (read batch by batch).

Files users hand us (datasets, expert traces, responses to score) are saved by many tools: a line may be cut
mid-character, be Latin-1, or not be JSON at all. JSONL is decoded line by line (not the whole file as UTF-8), so one
broken line becomes a rejected row naming the file, the line and the reason, and every other line is still read.

Both yield :class:`~data_prep.pipeline.SourceRow` with the 0-based row number, so a reject names the row a user can
find with ``sed -n '<row+1>p'`` or ``pq.read_table(...).slice(row, 1)``. A JSONL line that does not parse is
yielded as its exception and ends up in the rejects file, not in a crash.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq

from data_prep.pipeline import SourceRow


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


def iter_jsonl(path: str | os.PathLike) -> Iterator[SourceRow]:
    """Yield one :class:`SourceRow` per non-blank line of a JSONL file (:func:`read_jsonl_lines`).

    ``record`` is the parsed object, or a ``ValueError`` naming the 1-based line and why it is unusable (not UTF-8,
    not JSON, not an object), which the pipeline turns into a rejected row. ``row`` is the 0-based line number.
    """
    name = os.fspath(path)
    for line in read_jsonl_lines(path):
        record = line.record if line.error is None else ValueError(f"line {line.line} is {line.error}")
        yield SourceRow(name, line.line - 1, record)


def iter_parquet(path: str | os.PathLike, columns: list[str] | None = None, batch_size: int = 256) -> Iterator[SourceRow]:
    """Yield one :class:`SourceRow` per parquet row, reading ``batch_size`` rows at a time (memory stays flat).

    Raises:
        KeyError: a requested column is missing (names the file and the columns it has).
    """
    name = os.fspath(path)
    pf = pq.ParquetFile(path)
    if columns is not None:
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            raise KeyError(f"{name}: no column(s) {missing}; columns are {pf.schema_arrow.names}")
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
        for record in batch.to_pylist():
            yield SourceRow(name, row, record)
            row += 1


def iter_records(path: str | os.PathLike, columns: list[str] | None = None) -> Iterator[SourceRow]:
    """Dispatch on the suffix: ``.parquet`` -> :func:`iter_parquet`, ``.jsonl``/``.json`` -> :func:`iter_jsonl`."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        return iter_parquet(path, columns)
    if suffix in (".jsonl", ".json"):
        return iter_jsonl(path)
    raise ValueError(f"{path}: unsupported input format {suffix!r} (expected .jsonl, .json or .parquet)")


def count_rows(path: str | os.PathLike) -> int | None:
    """Row count from parquet metadata (free); None for JSONL (would cost a full read)."""
    if Path(path).suffix.lower() == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return None
