"""Atomic file writes: a reader (or a resumed run) sees the old file or the whole new one, never a torn one.

The content goes to a temporary file in the destination directory (same filesystem), is flushed and fsynced,
and is then moved onto the final name with ``os.replace`` (or ``os.link`` when the final name must not exist
yet); the directory is fsynced so the rename survives a power loss. A kill at any point leaves at most a
``.tmp-*`` file behind, which :func:`remove_stale_temps` deletes.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

TMP_PREFIX = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems (and Windows) cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, create_only: bool = False) -> Iterator[Path]:
    """Context manager yielding a temporary path that becomes ``path`` when the block exits cleanly.

    Write the whole content to the yielded path inside the block (streaming writers included). On a clean exit
    the temp file is fsynced and moved onto ``path`` (``os.replace``; with ``create_only``, ``os.link`` so an
    existing ``path`` is never replaced); on an exception it is deleted and ``path`` is untouched.

    Raises:
        FileExistsError: ``create_only`` and ``path`` exists (nothing changed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if create_only:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, create_only: bool = False) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` must write the whole content to ``tmp``.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        Whatever ``write`` or the filesystem raises (then ``path`` is untouched and the temp file removed);
        FileExistsError when ``create_only`` and ``path`` exists.
    """
    with atomic_path(path, create_only=create_only) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_parquet(path: str | os.PathLike, table: pa.Table, *, create_only: bool = False) -> Path:
    """Write an Arrow table as parquet, atomically (``create_only``: fail rather than replace)."""
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp), create_only=create_only)


def remove_stale_temps(directory: str | os.PathLike) -> int:
    """Delete ``.tmp-*`` leftovers of killed writes under ``directory`` (recursively). Returns how many."""
    removed = 0
    root = Path(directory)
    if not root.exists():
        return 0
    for tmp in root.rglob(f"{TMP_PREFIX}*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
