"""Read the pass-rate export (``python -m verl_rise.passrate export``): the four bucket files and their prompt rows.

Each of ``hard.parquet``, ``inconsistent.parquet``, ``solved.parquet``, ``unseen.parquet`` holds original RL parquet
rows (``data_source``, ``prompt``, ``images``, ``ability``, ``reward_model``, ``extra_info``; the contract of
:mod:`data_prep.schema`) plus the statistics columns (``passrate_bucket``, ``passrate``, ...);
``inconsistent.parquet`` also has ``correct_responses`` (list of ``{response, score, step}``).

Tables stay in Arrow memory (image bytes are not turned into Python objects); a row becomes a :class:`PromptRow`
only when a step asks for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HARD, INCONSISTENT, SOLVED, UNSEEN = "hard", "inconsistent", "solved", "unseen"
BUCKETS = (HARD, INCONSISTENT, SOLVED, UNSEEN)
BUCKET_FILES = {b: f"{b}.parquet" for b in BUCKETS}
RESPONSES_COLUMN = "correct_responses"
BUCKET_COLUMN = "passrate_bucket"
#: Columns every bucket file must have (the RL row contract plus the bucket).
REQUIRED_COLUMNS = ("data_source", "prompt", "images", "reward_model", "extra_info", BUCKET_COLUMN)


class SFTInputError(ValueError):
    """An input file that the SFT builder cannot use; the message names the file, the row and the field."""


@dataclass(frozen=True)
class PromptRow:
    """One prompt of the export, as the SFT builder uses it.

    Attributes:
        prompt_id: ``extra_info.prompt_id``.
        bucket: ``hard``, ``inconsistent``, ``solved`` or ``unseen``.
        file, row: where it was read (0-based row).
        data_source: the row's ``data_source``.
        messages: the ``prompt`` chat messages (system, user with ``<image>`` placeholders).
        images: ``[{"bytes": ..., "path": ...}, ...]``, one per placeholder.
        ground_truth: ``reward_model.ground_truth``.
        options: ``extra_info.options`` (option texts, A first; empty for free-form).
        passrate: the export's ``passrate`` (None when unseen).
        responses: ``correct_responses`` of an inconsistent row (``[{response, score, step}]``), else empty.
    """

    prompt_id: str
    bucket: str
    file: str
    row: int
    data_source: str
    messages: list[dict[str, str]]
    images: list[dict[str, Any]]
    ground_truth: str
    options: list[str]
    passrate: float | None
    responses: list[dict[str, Any]]


def _field(value: Any, file: Path, row: int, name: str) -> Any:
    if value is None:
        raise SFTInputError(f"{file}: row {row}: field {name} is missing")
    return value


def row_from_dict(d: dict[str, Any], bucket: str, file: Path, row: int) -> PromptRow:
    """Check one RL row dict and turn it into a :class:`PromptRow`.

    Raises:
        SFTInputError: a missing/empty ``extra_info.prompt_id``, ``reward_model.ground_truth`` or ``prompt``, a
            ``prompt`` without a user message, or a placeholder count that differs from the image count.
    """
    extra = _field(d.get("extra_info"), file, row, "extra_info")
    prompt_id = extra.get("prompt_id")
    if not isinstance(prompt_id, str) or not prompt_id:
        raise SFTInputError(f"{file}: row {row}: extra_info.prompt_id is missing or empty")
    reward_model = _field(d.get("reward_model"), file, row, "reward_model")
    ground_truth = reward_model.get("ground_truth")
    if ground_truth is None or str(ground_truth).strip() == "":
        raise SFTInputError(f"{file}: row {row}: reward_model.ground_truth is missing or empty")
    messages = _field(d.get("prompt"), file, row, "prompt")
    if not any(m.get("role") == "user" for m in messages):
        raise SFTInputError(f"{file}: row {row}: prompt has no user message")
    images = d.get("images") or []
    placeholders = sum(str(m.get("content", "")).count("<image>") for m in messages)
    if placeholders != len(images):
        raise SFTInputError(f"{file}: row {row}: prompt has {placeholders} <image> placeholder(s) but images has "
                            f"{len(images)} entr(y/ies)")
    return PromptRow(
        prompt_id=prompt_id,
        bucket=bucket,
        file=str(file),
        row=row,
        data_source=str(d.get("data_source") or ""),
        messages=[{"role": m["role"], "content": m["content"]} for m in messages],
        images=[{"bytes": im.get("bytes"), "path": im.get("path")} for im in images],
        ground_truth=str(ground_truth),
        options=[str(o) for o in (extra.get("options") or [])],
        passrate=d.get("passrate"),
        responses=list(d.get(RESPONSES_COLUMN) or []),
    )


class ExportTables:
    """The four bucket files of one export, indexed by prompt id.

    Args:
        export_dir: the export's output directory.

    Raises:
        FileNotFoundError: a bucket file is missing.
        SFTInputError: a required column is missing, ``inconsistent.parquet`` has no ``correct_responses``, or a
            row's ``passrate_bucket`` differs from its file's bucket (naming the file and row).
    """

    def __init__(self, export_dir: str | os.PathLike) -> None:
        self.dir = Path(export_dir)
        self.tables: dict[str, pa.Table] = {}
        self.paths: dict[str, Path] = {}
        for bucket in BUCKETS:
            path = self.dir / BUCKET_FILES[bucket]
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; expected the four files of `python -m verl_rise.passrate "
                                        f"export` ({', '.join(BUCKET_FILES.values())})")
            names = pq.read_schema(path).names
            missing = [c for c in REQUIRED_COLUMNS if c not in names]
            if bucket == INCONSISTENT and RESPONSES_COLUMN not in names:
                missing.append(RESPONSES_COLUMN)
            if missing:
                raise SFTInputError(f"{path}: missing column(s) {missing}; has {names}")
            # Solved/unseen rows are only accounted for: skip their image bytes.
            columns = None if bucket in (HARD, INCONSISTENT) else ["extra_info", BUCKET_COLUMN]
            table = pq.read_table(path, columns=columns)
            wrong = pc.not_equal(table.column(BUCKET_COLUMN), bucket).fill_null(True)
            if pc.any(wrong).as_py():
                row = pc.index(wrong, True).as_py()
                raise SFTInputError(f"{path}: row {row}: passrate_bucket is "
                                    f"{table.column(BUCKET_COLUMN)[row].as_py()!r}, expected {bucket!r}")
            self.tables[bucket] = table
            self.paths[bucket] = path

    def num_rows(self, bucket: str) -> int:
        return self.tables[bucket].num_rows

    def prompt_ids(self, bucket: str) -> list[str | None]:
        """``extra_info.prompt_id`` of every row of a bucket file, in row order (None where missing)."""
        return pc.struct_field(self.tables[bucket].column("extra_info"), "prompt_id").to_pylist()

    def row(self, bucket: str, row: int) -> PromptRow:
        """Row ``row`` of a hard or inconsistent file as a checked :class:`PromptRow`."""
        if bucket not in (HARD, INCONSISTENT):
            raise ValueError(f"only hard and inconsistent rows are loaded in full, not {bucket!r}")
        d = self.tables[bucket].slice(row, 1).to_pylist()[0]
        return row_from_dict(d, bucket, self.paths[bucket], row)

    def rows(self, bucket: str) -> Iterator[PromptRow]:
        for i in range(self.num_rows(bucket)):
            yield self.row(bucket, i)
