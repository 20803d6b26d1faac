"""Read VLMEvalKit's benchmark TSV files (the files the OpenCompass leaderboard itself reads).

Layout (``vlmeval/dataset/image_base.py``, ``ImageBaseDataset.__init__``): a tab-separated file with a header row,
written by pandas (fields holding tabs, newlines or quotes are double-quoted). Columns: ``index``, ``image`` and the
benchmark's own fields. The ``image`` cell holds

* the base64 of one encoded image,
* a Python list literal of base64 strings (several images),
* or, to save space, the ``index`` of another row whose image it shares (any cell of at most 64 characters).

A file may carry ``image_path`` (paths relative to ``--root``) instead of ``image``. Every cell is kept as text
(``"1.0"`` stays ``"1.0"``); an empty cell is None.

The file is streamed twice: once for the header and the image references, once to convert; only the images other
rows refer to are held in memory.
"""

from __future__ import annotations

import ast
import csv
import os
import sys
from pathlib import Path
from typing import Iterator

from data_prep.benchmarks.specs import BenchmarkRecord, Unreadable
from data_prep.errors import BAD_ROW, MISSING_IMAGE, RowRejected
from data_prep.images import read_image_bytes
from data_prep.pipeline import SourceRow

#: VLMEvalKit: an image cell this short names another row's index instead of holding an image.
MAX_REFERENCE_CHARS = 64


def _open_rows(path: Path) -> Iterator[list[str]]:
    # Base64 images are far longer than csv's default 128 KiB field limit.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(path, encoding="utf-8", newline="") as f:
        yield from csv.reader(f, delimiter="\t")


def read_header(path: str | os.PathLike) -> list[str]:
    """The TSV's column names.

    Raises:
        ValueError: an empty file, no ``index`` column, or a repeated column name (naming the file).
    """
    for header in _open_rows(Path(path)):
        if "index" not in header:
            raise ValueError(f"{path}: no 'index' column in the header {header[:12]}")
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise ValueError(f"{path}: repeated column(s) {dupes}")
        return header
    raise ValueError(f"{path}: empty file (no header row)")


def _split_images(cell: str) -> list[str]:
    text = cell.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise RowRejected("image", BAD_ROW, f"image cell looks like a list but is not one: {exc}") from exc
        return [str(v) for v in value]
    return [text]


def iter_vlmeval_tsv(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Iterator[SourceRow]:
    """Stream a VLMEvalKit TSV as :class:`SourceRow` records holding a :class:`BenchmarkRecord`.

    Args:
        path: the TSV file (e.g. ``~/LMUData/WeMath.tsv``).
        root: directory ``image_path`` cells are relative to (default: the TSV's directory).

    Yields:
        one SourceRow per data row (``row`` = 0-based data row number); a row that cannot be read (wrong number of
        cells, a dangling image reference, bad base64) carries an :class:`Unreadable` with its reason, which
        :func:`data_prep.pipeline.convert` writes to the rejects file.

    Raises:
        ValueError: from :func:`read_header`.
    """
    path = Path(path)
    header = read_header(path)
    root = Path(root) if root is not None else path.resolve().parent
    has_image = "image" in header
    image_col = header.index("image") if has_image else None
    path_col = header.index("image_path") if "image_path" in header else None
    index_col = header.index("index")

    referenced: set[str] = set()
    if has_image:
        for cells in _rows(path):
            if len(cells) == len(header):
                cell = cells[image_col].strip()
                if 0 < len(cell) <= MAX_REFERENCE_CHARS:
                    referenced.add(cell)
    shared: dict[str, str] = {}
    if referenced:
        for cells in _rows(path):
            if len(cells) == len(header) and cells[index_col].strip() in referenced:
                shared[cells[index_col].strip()] = cells[image_col]

    for row, cells in enumerate(_rows(path)):
        try:
            if len(cells) != len(header):
                raise RowRejected("row", BAD_ROW, f"{len(cells)} cells, the header has {len(header)}")
            columns = {name: (cell if cell != "" else None) for name, cell in zip(header, cells)}
            images = []
            if has_image and columns.get("image"):
                cell = columns.pop("image")
                if len(cell.strip()) <= MAX_REFERENCE_CHARS:
                    target = shared.get(cell.strip())
                    if target is None or len(target.strip()) <= MAX_REFERENCE_CHARS:
                        raise RowRejected("image", MISSING_IMAGE, f"refers to index {cell.strip()!r}, which has no image")
                    cell = target
                images = [read_image_bytes(v, encoding="base64", field="image") for v in _split_images(cell)]
            elif path_col is not None and columns.get("image_path"):
                images = [
                    read_image_bytes(p, root=root, encoding="path", field="image_path")
                    for p in _split_images(columns["image_path"])
                ]
            else:
                raise RowRejected("image", MISSING_IMAGE, "no image and no image_path")
            columns.pop("image", None)
            columns.pop("image_path", None)
            record: object = BenchmarkRecord(columns=columns, images=images)
        except RowRejected as rej:
            record = Unreadable(rej)
        yield SourceRow(str(path), row, record)


def _rows(path: Path) -> Iterator[list[str]]:
    rows = _open_rows(path)
    next(rows, None)  # header
    yield from rows
