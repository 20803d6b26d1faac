"""The conversion loop every converter shares: input rows -> checked rows in parquet, or reasons in the rejects file.

A converter supplies an iterator of :class:`SourceRow` and a function that turns one record into a
:class:`~data_prep.schema.Problem`; :func:`convert` does the rest (checks, prompt ids, duplicate detection, image
decode/resize, streaming atomic writes, counts). Invariant on return: ``read == written + rejected``.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
from tqdm import tqdm

from data_prep.errors import BAD_ROW, DUPLICATE_PROMPT, RowRejected
from data_prep.image_pool import DEFAULT_CHUNK_ROWS, ImagePool, PendingRow, prepare_row
from data_prep.images import DEFAULT_MAX_IMAGE_BYTES
from data_prep.schema import ARROW_SCHEMA, CheckedProblem, Problem, build_row, finalize_problem
from data_prep.writer import JsonlWriter, ParquetRowWriter
from data_prep.prompts import MAX_PIXELS, METIS_RISE_SYSTEM_PROMPT, MIN_PIXELS


@dataclass(frozen=True)
class SourceRow:
    """One input row and where it came from.

    Attributes:
        file: the input file, as given on the command line.
        row: 0-based row number in that file (JSONL: line number - 1).
        record: the parsed record, or the exception raised while parsing it (rejected as ``bad_row``).
    """

    file: str
    row: int
    record: Any


@dataclass
class ConvertConfig:
    """Options shared by all converters (the command-line flags of :mod:`data_prep.cli`).

    Attributes:
        output: destination parquet file.
        rejects: destination rejects JSONL; None means ``<output stem>.rejects.jsonl`` beside the output.
        split: value of ``extra_info.split``.
        data_source: value of the ``data_source`` column.
        system_prompt: system message; None or "" writes no system message.
        min_pixels, max_pixels: image area range in pixels; images outside are resized into it.
        max_image_bytes: largest encoded image a converter reads (its ``to_problem`` applies it).
        allow_option_text: accept a choice answer given as the exact text of an option.
        row_group_size: parquet rows per row group (bounds memory).
        progress: show a tqdm bar.
        workers: image-decoding worker processes; 0 decodes in the calling process (the library default; the
            command line defaults to the CPU count, :func:`data_prep.image_pool.default_workers`).
        chunk_rows: rows per worker task.
        reject_duplicates: reject a row whose prompt id was already written (off for benchmark files, whose rows
            are identified by their index: a benchmark that repeats a problem scores it twice).
    """

    output: Path
    rejects: Path | None = None
    split: str = "train"
    data_source: str = "unknown"
    system_prompt: str | None = METIS_RISE_SYSTEM_PROMPT
    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    allow_option_text: bool = False
    row_group_size: int = 256
    progress: bool = True
    workers: int = 0
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    reject_duplicates: bool = True

    def rejects_path(self) -> Path:
        if self.rejects is not None:
            return Path(self.rejects)
        out = Path(self.output)
        return out.with_name(out.stem + ".rejects.jsonl")


@dataclass
class ConversionStats:
    """Counts of one run. ``read == written + rejected`` always holds after :func:`convert`."""

    read: int = 0
    written: int = 0
    rejected: int = 0
    resized_images: int = 0
    by_reason: Counter = field(default_factory=Counter)

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / self.read if self.read else 0.0

    def summary(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.by_reason.items())) or "none"
        return (
            f"read {self.read} = written {self.written} + rejected {self.rejected} "
            f"({100 * self.rejected_fraction:.1f}%; reasons: {reasons}); resized images: {self.resized_images}"
        )


#: Most encoded image bytes held by rows waiting for their images (pool mode), besides ``chunk_rows`` limits.
MAX_QUEUED_IMAGE_BYTES = 256 * 2**20


@dataclass
class _Row:
    """A row between reading and writing: its problem, and its prepared images or the reason it is rejected."""

    src: SourceRow
    problem: CheckedProblem | None = None
    outcome: Any = None  # RowRejected | list[PreparedImage] | PendingRow | None (= prepare when written)


def _image_bytes(row: _Row) -> int:
    return sum(len(im.data) for im in row.problem.images) if row.problem is not None else 0


def convert(
    rows: Iterable[SourceRow],
    to_problem: Callable[[Any], Problem],
    config: ConvertConfig,
    *,
    total: int | None = None,
    desc: str = "convert",
    schema: pa.Schema = ARROW_SCHEMA,
) -> ConversionStats:
    """Convert ``rows`` into ``config.output`` and ``config.rejects_path()``.

    Args:
        rows: the input rows, streamed.
        to_problem: record -> :class:`Problem`; raises :class:`RowRejected` for bad input (``KeyError``,
            ``TypeError`` and ``ValueError`` from it are also recorded as ``bad_row``, never raised). Always runs
            in the calling process (it may be a closure).
        config: output paths and options; ``config.workers`` > 0 decodes images in that many worker processes
            (:mod:`data_prep.image_pool`), with output identical to the serial path's.
        total: number of rows if known (progress bar only).
        desc: progress-bar label.
        schema: the output's Arrow schema (:data:`ARROW_SCHEMA`, or one with more ``extra_info`` fields).

    Returns:
        :class:`ConversionStats`. Both files are in place when this returns; on an exception neither is touched.

    A row whose prompt id was already written in this run is rejected as ``duplicate_prompt`` (the rejects record
    names the first row). The set of seen ids is the only state that grows with the input (~100 bytes per row);
    at most ``2 * workers * chunk_rows`` rows (and :data:`MAX_QUEUED_IMAGE_BYTES`) are in flight.
    """
    stats = ConversionStats()
    seen: dict[str, tuple[str, int]] = {}  # prompt id -> (file, row) of the written row
    sent: set[str] = set()  # prompt ids of queued rows whose images are in the pool: a repeat waits for the outcome
    queue: deque[_Row] = deque()
    queued_bytes = 0  # encoded image bytes held by queued rows
    pool: ImagePool | None = None
    max_rows = 2 * config.workers * config.chunk_rows  # a batch at work and one waiting, per worker

    def check(src: SourceRow) -> _Row:
        row = _Row(src)
        try:
            if isinstance(src.record, BaseException):
                raise RowRejected("row", BAD_ROW, f"{type(src.record).__name__}: {src.record}")
            try:
                row.problem = finalize_problem(to_problem(src.record), allow_option_text=config.allow_option_text)
            except (KeyError, TypeError, ValueError) as exc:
                raise RowRejected("row", BAD_ROW, f"{type(exc).__name__}: {exc}") from exc
        except RowRejected as rej:
            row.outcome = rej
            return row
        prompt_id = row.problem.prompt_id
        if pool is not None and (not config.reject_duplicates or (prompt_id not in seen and prompt_id not in sent)):
            sent.add(prompt_id)
            row.outcome = pool.submit(row.problem.images)
        return row

    def finish(row: _Row, rejects: JsonlWriter, out: ParquetRowWriter) -> None:
        src, problem, outcome = row.src, row.problem, row.outcome
        if isinstance(outcome, PendingRow):
            sent.discard(problem.prompt_id)
        if config.reject_duplicates and problem is not None and problem.prompt_id in seen:
            first_file, first_row = seen[problem.prompt_id]
            outcome = RowRejected(
                "prompt_id", DUPLICATE_PROMPT, f"{problem.prompt_id} already written from {first_file} row {first_row}"
            )
        elif isinstance(outcome, PendingRow):
            outcome = outcome.result()
        elif outcome is None:  # serial path, or a repeat queued while its first copy was in the pool (rejected)
            outcome = prepare_row(problem.images, config.min_pixels, config.max_pixels)
        if isinstance(outcome, RowRejected):
            stats.rejected += 1
            stats.by_reason[outcome.reason] += 1
            rejects.write(
                {"file": src.file, "row": src.row, "field": outcome.field, "reason": outcome.reason,
                 "detail": outcome.detail}
            )
            return
        seen[problem.prompt_id] = (src.file, src.row)
        stats.resized_images += sum(p.resized for p in outcome)
        out.write(
            build_row(
                problem,
                [p.as_row_value() for p in outcome],
                index=stats.written,
                split=config.split,
                data_source=config.data_source,
                system_prompt=config.system_prompt,
            )
        )
        stats.written += 1

    with contextlib.ExitStack() as stack:
        if config.workers > 0:  # first: before the writers or the progress bar start any thread
            pool = stack.enter_context(
                ImagePool(config.workers, min_pixels=config.min_pixels, max_pixels=config.max_pixels,
                          chunk_rows=config.chunk_rows)
            )
        out = stack.enter_context(ParquetRowWriter(config.output, schema, config.row_group_size))
        rejects = stack.enter_context(JsonlWriter(config.rejects_path()))
        for src in tqdm(rows, total=total, desc=desc, unit="row", disable=not config.progress, mininterval=0.5):
            stats.read += 1
            row = check(src)
            queue.append(row)
            queued_bytes += _image_bytes(row)
            # Write every row whose outcome is known, in input order; block on the oldest only when the queue is
            # full (rows or bytes), so memory stays bounded whatever the image sizes.
            while queue and (
                len(queue) > max_rows
                or queued_bytes > MAX_QUEUED_IMAGE_BYTES
                or not isinstance(queue[0].outcome, PendingRow)
                or queue[0].outcome.done()
            ):
                row = queue.popleft()
                queued_bytes -= _image_bytes(row)
                finish(row, rejects, out)
        while queue:
            finish(queue.popleft(), rejects, out)
    assert stats.read == stats.written + stats.rejected
    return stats


def resolve_root(path: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    """Directory that relative image paths in ``path`` resolve against: ``root`` if given, else ``path``'s dir."""
    return Path(root) if root is not None else Path(path).resolve().parent
