"""Image preparation (decode, check, resize: :func:`data_prep.images.prepare_image`) in worker processes.

Decoding is most of a conversion's CPU time (MATH-Vision: ~70 %), and it is independent per row, so
:class:`ImagePool` runs it in a process pool while the main process reads rows, computes prompt ids and writes
parquet. Rows go to the workers in batches of ``chunk_rows`` (one pickle round trip per batch, not per image), and
an image that needs no change comes back as its size only: its bytes never travel back. Results are handed out
per row in submission order, so the output is identical to the serial path's (:func:`data_prep.pipeline.convert`
decides duplicates and writes in input order either way).

Workers are forked when the calling process runs no other thread (the command-line converters: nothing to import
again, nothing to pickle but the batches). A process with threads (forking it could copy a lock another thread
holds) gets workers from a ``forkserver`` that preloads this module; like every ``spawn``/``forkserver`` pool,
that one imports the caller's ``__main__`` module in each worker, so a script must keep its work under
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from PIL import Image

from data_prep.errors import RowRejected
from data_prep.images import PreparedImage, RawImage, prepare_image

#: Rows per task sent to a worker.
DEFAULT_CHUNK_ROWS = 16


def default_workers() -> int:
    """Worker processes for the command-line default: the CPUs this process may run on, 0 (serial) when one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return 0 if cpus <= 1 else min(cpus, 16)


def prepare_row(images: list[RawImage], min_pixels: int, max_pixels: int) -> list[PreparedImage] | RowRejected:
    """All images of one row prepared, or the :class:`RowRejected` of the first bad one (not raised)."""
    try:
        return [prepare_image(im, min_pixels=min_pixels, max_pixels=max_pixels) for im in images]
    except RowRejected as rej:
        return rej


def _prepare_batch(
    batch: list[list[RawImage]], min_pixels: int, max_pixels: int
) -> list[list[PreparedImage | tuple[int, int]] | RowRejected]:
    # Runs in a worker. An unchanged image returns as (width, height): the caller still holds its bytes.
    out: list[list[PreparedImage | tuple[int, int]] | RowRejected] = []
    for images in batch:
        result = prepare_row(images, min_pixels, max_pixels)
        if isinstance(result, RowRejected):
            out.append(result)
        else:
            out.append([(p.width, p.height) if p.data is raw.data else p for p, raw in zip(result, images)])
    return out


@dataclass
class _Batch:
    rows: list[list[RawImage]]
    future: Future | None = None


class PendingRow:
    """Handle of one row's images in an :class:`ImagePool`; :meth:`result` blocks until they are prepared."""

    def __init__(self, pool: "ImagePool", batch: _Batch, position: int) -> None:
        self._pool, self._batch, self._position = pool, batch, position

    def done(self) -> bool:
        return self._batch.future is not None and self._batch.future.done()

    def result(self) -> list[PreparedImage] | RowRejected:
        """The prepared images (in the row's order), or the reason the row is rejected."""
        if self._batch.future is None:
            self._pool.flush()
        value = self._batch.future.result()[self._position]
        if isinstance(value, RowRejected):
            return value
        raws = self._batch.rows[self._position]
        return [
            PreparedImage(raw.data, raw.path, v[0], v[1], resized=False) if isinstance(v, tuple) else v
            for v, raw in zip(value, raws)
        ]


class ImagePool:
    """A process pool preparing rows' images in batches. Use as a context manager.

    Args:
        workers: worker processes (>= 1).
        min_pixels, max_pixels: passed to :func:`~data_prep.images.prepare_image`.
        chunk_rows: rows per task.

    Raises:
        ValueError: ``workers < 1`` or ``chunk_rows < 1``.
    """

    def __init__(self, workers: int, *, min_pixels: int, max_pixels: int, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        if workers < 1 or chunk_rows < 1:
            raise ValueError(f"workers and chunk_rows must be >= 1, got {workers} and {chunk_rows}")
        self.workers, self.chunk_rows = workers, chunk_rows
        self._pixels = (min_pixels, max_pixels)
        if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
        self.start_method = context.get_start_method()
        # PIL imports its format plugins on the first open; done here, forked workers inherit them instead of each
        # paying the import on its first batch (~0.1 s per worker, 10 % of a 1k-row conversion).
        Image.preinit()
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self._executor.submit(int)  # starts (forks) every worker now, while this is still the only thread
        self._open = _Batch([])

    def submit(self, images: list[RawImage]) -> PendingRow:
        """Queue one row's images; a full batch goes to a worker at once."""
        batch = self._open
        batch.rows.append(images)
        handle = PendingRow(self, batch, len(batch.rows) - 1)
        if len(batch.rows) >= self.chunk_rows:
            self.flush()
        return handle

    def flush(self) -> None:
        """Send the partly filled batch to a worker now."""
        if self._open.rows:
            self._open.future = self._executor.submit(_prepare_batch, self._open.rows, *self._pixels)
            self._open = _Batch([])

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ImagePool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
