"""Streaming readers for tabular inputs: JSONL (one object per line) and parquet (read batch by batch).

Both yield :class:`~data_prep.pipeline.SourceRow` with the 0-based row number, so a reject names the row a user can
find with ``sed -n '<row+1>p'`` or ``pq.read_table(...).slice(row, 1)``. A JSONL line that does not parse is
yielded as its exception and ends up in the rejects file, not in a crash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

from data_prep.pipeline import SourceRow


def iter_jsonl(path: str | os.PathLike) -> Iterator[SourceRow]:
    """Yield one :class:`SourceRow` per non-blank line of a JSONL file.

    ``record`` is the parsed object, or the ``ValueError`` when the line is not UTF-8 or not a JSON object (the
    message names the 1-based line). Lines end at ``\n`` (the numbering ``sed -n`` uses); a UTF-8 byte-order mark
    on the first line is skipped. The file is read as bytes so one bad line cannot stop the whole file.
    """
    name = os.fspath(path)
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh):
            if not raw.strip():
                continue
            try:
                try:
                    line = raw.decode("utf-8-sig" if i == 0 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(
                        f"line {i + 1} is not UTF-8: byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1}"
                    ) from exc
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"line {i + 1} is JSON {type(record).__name__}, not an object")
            except ValueError as exc:
                record = exc
            yield SourceRow(name, i, record)


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
