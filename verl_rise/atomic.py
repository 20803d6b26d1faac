"""Atomic file output: write to a temporary file beside the target, then ``os.replace`` it into place.

A reader never sees a half-written file, and a crash mid-write leaves the previous version intact.
:class:`AtomicFile` serves streaming writers that keep the file open across calls; :func:`atomic_path`
is the context-manager form for one-shot writes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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

    def commit(self) -> None:
        """fsync the temp file and rename it onto the target."""
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Remove the temp file; the target is untouched."""
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on normal exit it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is untouched.

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
    except BaseException:
        file.abort()
        raise
    file.commit()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
