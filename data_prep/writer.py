"""Streaming, atomic output: parquet row groups and the rejects JSONL.

Both writers write to a temporary file in the destination directory and ``os.replace`` it onto the final name
only when :meth:`close` is called without an error, so a crash or Ctrl-C never leaves a half-written file under the
final name (the project's atomic-write rule). Memory is bounded by one row group: rows are buffered up to
``row_group_size`` and then flushed with :class:`pyarrow.parquet.ParquetWriter`.

A killed writer leaves its hidden temp file (``.<name>.<8 random chars>.tmp``) behind. Each writer holds an
exclusive ``flock`` on its own temp file while it lives, so the next writer of the same output can tell the temp
files of dead writers (lock free: removed, :func:`remove_stale_temps_of`) from those of live ones (left alone).
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterable, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from data_prep.atomic import AtomicFile


def remove_stale_temps_of(path: str | os.PathLike) -> int:
    """Delete the temp files that killed writers of ``path`` left in its directory. Returns how many.

    Only files named like :class:`~data_prep.atomic.AtomicFile` temps of this very output are considered, and a
    temp file whose writer is still running (it holds the file's ``flock``) is kept.
    """
    target = Path(path)
    name = re.compile(re.escape(f".{target.name}.") + r"[a-z0-9_]{8}\.tmp")
    removed = 0
    for candidate in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if not name.fullmatch(candidate.name):
            continue
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer's
            candidate.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


def _claimed_temp(path: str | os.PathLike) -> tuple[AtomicFile, int]:
    """Remove dead writers' temps of ``path``, then create ours and hold its lock (fd closed at commit/abort)."""
    remove_stale_temps_of(path)
    file = AtomicFile(path)
    fd = os.open(file.tmp, os.O_RDONLY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return file, fd


class _CommitOnExit:
    """``with writer:`` commits the file (``close``) when the block succeeds and discards it (``abort``) when it
    raises, so a failed conversion never leaves a partial output in place."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ParquetRowWriter(_CommitOnExit):
    """Write row dicts to a parquet file in row groups, atomically.

    Args:
        path: destination ``.parquet`` file (its directory is created).
        schema: the Arrow schema every row follows (:data:`data_prep.schema.ARROW_SCHEMA`).
        row_group_size: rows per row group; also the most rows held in memory.

    Use as a context manager: a clean exit commits the file, an exception discards it.
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema, row_group_size: int = 256) -> None:
        if row_group_size < 1:
            raise ValueError(f"row_group_size must be >= 1, got {row_group_size}")
        self._file, self._lock = _claimed_temp(path)
        self.schema = schema
        self.row_group_size = row_group_size
        self._writer = pq.ParquetWriter(self._file.tmp, schema)
        self._buffer: list[dict[str, Any]] = []
        self.rows_written = 0

    @property
    def path(self) -> Path:
        return self._file.path

    def write(self, row: dict[str, Any]) -> None:
        """Buffer one row; flushes a row group when the buffer is full."""
        self._buffer.append(row)
        if len(self._buffer) >= self.row_group_size:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self.rows_written += len(self._buffer)
            self._buffer.clear()

    def close(self) -> None:
        """Flush, close and move the file into place."""
        self.flush()
        self._writer.close()
        try:
            self._file.commit()
        finally:
            os.close(self._lock)

    def abort(self) -> None:
        """Discard everything written so far."""
        self._buffer.clear()
        try:
            self._writer.close()
        finally:
            self._file.abort()
            os.close(self._lock)


class JsonlWriter(_CommitOnExit):
    """Write one JSON object per line, atomically (used for the rejects file and reports).

    Args:
        path: destination file (its directory is created).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._file, self._lock = _claimed_temp(path)
        self._fh: TextIO = open(self._file.tmp, "w", encoding="utf-8")
        self.count = 0

    @property
    def path(self) -> Path:
        return self._file.path

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
        self.count += 1

    def close(self) -> None:
        self._fh.close()
        try:
            self._file.commit()
        finally:
            os.close(self._lock)

    def abort(self) -> None:
        self._fh.close()
        self._file.abort()
        os.close(self._lock)


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays (what pandas hands out for parquet columns) as plain Python; anything else as text.
    return value.tolist() if hasattr(value, "tolist") else str(value)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object per line to ``path``, atomically (nothing appears there if this raises).

    numpy values become plain Python values; other objects JSON cannot encode are written as ``str(value)``.

    Returns:
        The number of records written.
    """
    with JsonlWriter(path) as writer:
        for record in records:
            writer.write(record)
    return writer.count
