"""Atomic file output: write to a temporary file beside the target, then ``os.replace`` it into place.

A reader never sees a half-written file, and a crash mid-write leaves the previous version intact.
:class:`AtomicFile` serves streaming writers that keep the file open across calls; :func:`atomic_path`
is the context-manager form for one-shot writes. A killed write leaves at most a hidden temp file
(``.<name>.<random>.tmp``), which :func:`remove_stale_temps` deletes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: glob pattern of the temp files this module creates.
TEMP_GLOB = ".*.tmp"


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable (a power loss after rename could otherwise lose it on some filesystems).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms/filesystems that cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """A temp file next to ``path`` that becomes ``path`` on :meth:`commit` and vanishes on :meth:`abort`.

    The temp file gets the permissions a plain ``open()`` would give (0666 minus umask), not mkstemp's 0600.
    Parent directories are created.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self.tmp = Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)

    def commit(self, *, replace: bool = True) -> None:
        """fsync the temp file and move it onto the target.

        Args:
            replace: replace an existing target (``os.replace``). False: publish with ``os.link`` so an
                existing target is never overwritten (no-clobber create for write-once files).

        Raises:
            FileExistsError: ``replace=False`` and the target exists (the temp file is then removed).
        """
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        if replace:
            os.replace(self.tmp, self.path)
        else:
            try:
                os.link(self.tmp, self.path)
            finally:
                self.tmp.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Remove the temp file; the target is untouched."""
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on normal exit it becomes ``path``.

    On an exception (in the block or in the final rename) the temporary file is removed and ``path`` is
    untouched. ``replace=False``: see :meth:`AtomicFile.commit` (raises FileExistsError if ``path`` exists).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    file = AtomicFile(path)
    try:
        yield file.tmp
        file.commit(replace=replace)
    except BaseException:
        file.abort()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temps(directory: str | os.PathLike) -> int:
    """Delete the temp files of killed atomic writes under ``directory`` (recursively). Returns how many.

    Only for a directory no other process is writing to at the moment (it would delete their temp files).
    """
    root = Path(directory)
    if not root.is_dir():
        return 0
    removed = 0
    for tmp in root.rglob(TEMP_GLOB):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
