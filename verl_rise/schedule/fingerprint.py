"""Content hashes of a stage's inputs, and the fingerprint that decides whether a stage must run again.

A file's hash is the SHA-256 of its bytes; a directory's is the SHA-256 of the sorted ``(relative path, file hash)``
list of every file below it (hidden temp files of atomic writes excluded). Hashing a 7B model (15 GB) takes
~15 s, so hashes are cached per ``(path, size, mtime_ns, inode)``: a file is read again only when one of these
changes, which every write does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Optional, Union

from data_prep.atomic import write_text_atomic

_CHUNK = 1 << 20

#: An input: a file or directory, or a (directory, fnmatch pattern) pair.
Input = Union[Path, tuple[Path, str]]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def stable_hash(obj) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys): the same value gives the same hash in any process."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class HashCache:
    """Content hashes of files and directories, remembered per file identity in a JSON file.

    Args:
        path: the cache file (None: in memory only).
    """

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path
        self._entries: dict[str, list] = {}
        self._dirty = False
        if path is not None and path.is_file():
            try:
                self._entries = json.loads(path.read_text())
            except (OSError, ValueError):
                self._entries = {}  # a damaged cache only costs re-hashing

    def file(self, path: Path) -> str:
        """SHA-256 of a file's bytes (cached by size, mtime and inode)."""
        st = path.stat()
        key = str(path.resolve())
        ident = [st.st_size, st.st_mtime_ns, st.st_ino]
        cached = self._entries.get(key)
        if cached is not None and cached[:3] == ident:
            return cached[3]
        digest = _file_sha256(path)
        self._entries[key] = ident + [digest]
        self._dirty = True
        return digest

    def tree(self, path: Path, pattern: str = "*") -> str:
        """SHA-256 over ``(relative path, content hash)`` of the files below a directory whose name matches
        ``pattern`` (fnmatch), or a file's hash."""
        if path.is_file():
            return self.file(path)
        h = hashlib.sha256()
        for p in sorted(_files_below(path, pattern)):
            h.update(str(p.relative_to(path)).encode() + b"\0" + self.file(p).encode() + b"\n")
        return h.hexdigest()

    def describe(self, inputs: Iterable[Input]) -> dict[str, dict]:
        """``{label: {"sha256": ..., "bytes": ...}}`` for each input: a path (file or whole directory) or a
        ``(directory, pattern)`` pair (only the matching files count); the label is the path, plus ``/pattern``.

        Raises:
            FileNotFoundError: an input does not exist.
        """
        out = {}
        for item in inputs:
            p, pattern = (item, "*") if isinstance(item, Path) else (Path(item[0]), item[1])
            if not p.exists():
                raise FileNotFoundError(f"input not found: {p}")
            size = p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in _files_below(p, pattern))
            label = str(p) if pattern == "*" else f"{p}/{pattern}"
            out[label] = {"sha256": self.tree(p, pattern), "bytes": size}
        return out

    def save(self) -> None:
        """Write the cache file (atomically) if anything new was hashed."""
        if self.path is not None and self._dirty:
            write_text_atomic(self.path, json.dumps(self._entries))
            self._dirty = False


def _files_below(root: Path, pattern: str = "*") -> list[Path]:
    # Hidden entries (temp files of atomic writes, .cache dirs) and bytecode caches are not content.
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
        for name in filenames:
            if name.startswith(".") or not fnmatch.fnmatch(name, pattern):
                continue
            files.append(Path(dirpath) / name)
    return files
