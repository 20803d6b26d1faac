"""Scored-rollout records: the unit the pass-rate tracker counts.

One record is one scored response (one rollout of one GRPO group, or one sample of the post-RL sweep):

==========  =========  ==========================================================================
column      type       meaning
==========  =========  ==========================================================================
prompt_id   str        stable prompt id (``extra_info.prompt_id`` written by data_prep); never
                       verl's ``uid``, which is a fresh uuid each time a prompt is drawn
step        int64      verl global step the response was scored in (the checkpoint's step for the
                       sweep); ``>= 0``
acc         float64    accuracy of the response, exactly 0.0 or 1.0 (the reward's ``acc`` key)
score       float64    the reward the policy saw (verl's ``rm_scores`` summed over tokens); finite
response    str        optional: the decoded response, kept for self-distillation candidates
==========  =========  ==========================================================================

:class:`RecordBatch` validates a whole batch with vectorised checks and raises :class:`RecordError` naming the
source (file, dump line, producer), the first bad record and the field. Nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

REQUIRED_COLUMNS = ("prompt_id", "step", "acc", "score")
RESPONSE_COLUMN = "response"

#: Arrow schema of record shards (``response`` is present only when the producer kept responses).
RECORD_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("step", pa.int64()),
        ("acc", pa.float64()),
        ("score", pa.float64()),
    ]
)


class RecordError(ValueError):
    """A record that cannot be counted. The message names the source, the record index and the field."""


def _to_string_array(
    values: Any, source: str, field: str = "prompt_id", labels: Sequence[str] | None = None
) -> pa.StringArray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
            values = values.cast(pa.string())
        if not pa.types.is_string(values.type):
            raise RecordError(f"{source}: field {field!r} must be strings, got Arrow type {values.type}")
        return values
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    try:
        return pa.array(arr, type=pa.string(), from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for i, v in enumerate(arr):
            if not isinstance(v, str) and v is not None:
                where = labels[i] if labels is not None else f"record {i}"
                raise RecordError(
                    f"{source}: {where}: field {field!r} must be a string, got {type(v).__name__} {v!r}"
                ) from None
        raise


def _to_numpy(values: Any) -> np.ndarray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_numpy(zero_copy_only=False)
    return np.asarray(values)


@dataclass(frozen=True)
class RecordBatch:
    """A validated batch of ``n`` records (column arrays, all of length ``n``).

    Attributes:
        prompt_id: Arrow string array, no nulls, no empty strings.
        step: int64 array, every value ``>= 0``.
        acc: float64 array, every value exactly 0.0 or 1.0.
        score: float64 array, every value finite (NaN and +-inf are rejected).
        response: Arrow string array (nulls allowed) or None when the producer kept no responses.
        source: where the batch came from, used in error messages (a file path, ``"dump.jsonl"``, ...).
    """

    prompt_id: pa.StringArray
    step: np.ndarray
    acc: np.ndarray
    score: np.ndarray
    response: pa.StringArray | None
    source: str

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def from_columns(
        cls,
        prompt_id: Sequence[str] | np.ndarray | pa.Array,
        step: Sequence[int] | np.ndarray | pa.Array,
        acc: Sequence[float] | np.ndarray | pa.Array,
        score: Sequence[float] | np.ndarray | pa.Array,
        response: Sequence[str | None] | np.ndarray | pa.Array | None = None,
        *,
        source: str,
        labels: Sequence[str] | None = None,
    ) -> "RecordBatch":
        """Validate column arrays and build a batch.

        Args:
            prompt_id, step, acc, score, response: equal-length array-likes (lists, numpy arrays, Arrow arrays).
            source: name of the producer or file, quoted in every error.
            labels: optional name of each record for errors (e.g. ``"line 12"``); default ``"record <i>"``.

        Raises:
            RecordError: lengths differ; a prompt_id is missing, empty or not a string; a step is not an
                integer or is negative; an acc is not exactly 0 or 1; a score is NaN or infinite. The message
                names ``source``, the first bad record's index, the field and the value, and how many records
                of the batch have the same problem.
        """
        pid = _to_string_array(prompt_id, source, "prompt_id", labels)
        n = len(pid)
        step_np = _to_numpy(step)
        acc_np = _to_numpy(acc)
        score_np = _to_numpy(score)
        resp = None
        if response is not None:
            resp = _to_string_array(response, source, "response", labels)
        lengths = {"prompt_id": n, "step": len(step_np), "acc": len(acc_np), "score": len(score_np)}
        if resp is not None:
            lengths["response"] = len(resp)
        if len(set(lengths.values())) != 1:
            raise RecordError(f"{source}: columns have different lengths {lengths}")

        def fail(field: str, bad: np.ndarray, what: str) -> None:
            idx = np.flatnonzero(bad)
            i = int(idx[0])
            values = {"prompt_id": pid, "step": step_np, "acc": acc_np, "score": score_np}
            shown = values[field][i]
            shown = shown.as_py() if isinstance(shown, pa.Scalar) else shown
            shown = shown.item() if isinstance(shown, np.generic) else shown
            pid_i = pid[i].as_py()
            where = labels[i] if labels is not None else f"record {i}"
            raise RecordError(
                f"{source}: {where}: field {field!r} {what} (value {shown!r}, prompt_id {pid_i!r}); "
                f"{len(idx)} of {n} records in this batch have this problem"
            )

        if pid.null_count:
            fail("prompt_id", np.asarray(pid.is_null()), "is missing")
        if n:
            offsets = np.frombuffer(pid.buffers()[1], np.int32, n + 1, pid.offset * 4)
            empty = offsets[1:] == offsets[:-1]
            if empty.any():
                fail("prompt_id", empty, "is empty")

        if step_np.dtype.kind == "f":
            # Integral floats are accepted: JSON readers and pandas turn int columns with gaps into floats.
            not_int = ~np.isfinite(step_np) | (step_np != np.floor(step_np))
            if not_int.any():
                fail("step", not_int, "is not an integer")
        elif step_np.dtype.kind not in "iu":
            raise RecordError(f"{source}: field 'step' must be integers, got dtype {step_np.dtype}")
        step_np = step_np.astype(np.int64, copy=False)
        if n and step_np.min() < 0:
            fail("step", step_np < 0, "is negative")

        for name, arr in (("acc", acc_np), ("score", score_np)):
            if arr.dtype.kind not in "fiub":
                raise RecordError(f"{source}: field {name!r} must be numbers, got dtype {arr.dtype}")
        acc_np = acc_np.astype(np.float64, copy=False)
        score_np = score_np.astype(np.float64, copy=False)
        if not np.all(np.isfinite(score_np)):
            nan = np.isnan(score_np)
            fail("score", nan if nan.any() else ~np.isfinite(score_np), "is NaN" if nan.any() else "is infinite")
        if not np.all((acc_np == 0.0) | (acc_np == 1.0)):
            fail("acc", ~((acc_np == 0.0) | (acc_np == 1.0)), "is not exactly 0 or 1")
        return cls(pid, step_np, acc_np, score_np, resp, source)

    @classmethod
    def from_arrow(cls, table: pa.Table, *, source: str) -> "RecordBatch":
        """Build a batch from a table with the :data:`REQUIRED_COLUMNS` (and optionally ``response``).

        Raises:
            RecordError: a required column is missing, or any check of :meth:`from_columns` fails.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise RecordError(f"{source}: missing column(s) {missing}; found {table.column_names}")
        resp = table.column(RESPONSE_COLUMN) if RESPONSE_COLUMN in table.column_names else None
        return cls.from_columns(
            table.column("prompt_id"),
            table.column("step"),
            table.column("acc"),
            table.column("score"),
            resp.combine_chunks() if resp is not None else None,
            source=source,
        )

    def slice(self, start: int, stop: int) -> "RecordBatch":
        """Records ``start:stop`` (views, no copy, no re-validation)."""
        if start == 0 and stop >= len(self):
            return self
        resp = self.response.slice(start, stop - start) if self.response is not None else None
        return RecordBatch(self.prompt_id.slice(start, stop - start), self.step[start:stop], self.acc[start:stop],
                           self.score[start:stop], resp, self.source)

    def to_arrow(self) -> pa.Table:
        """The batch as an Arrow table (:data:`RECORD_SCHEMA`, plus ``response`` when present)."""
        cols = [self.prompt_id, pa.array(self.step), pa.array(self.acc), pa.array(self.score)]
        names = list(REQUIRED_COLUMNS)
        if self.response is not None:
            cols.append(self.response)
            names.append(RESPONSE_COLUMN)
        return pa.Table.from_arrays(cols, names=names)

    @staticmethod
    def concat(batches: Sequence["RecordBatch"], *, source: str) -> "RecordBatch":
        """Concatenate validated batches (responses are kept only if every batch has them)."""
        if not batches:
            return RecordBatch.from_columns([], np.empty(0, np.int64), np.empty(0), np.empty(0), source=source)
        with_resp = all(b.response is not None for b in batches)
        return RecordBatch(
            pa.concat_arrays([b.prompt_id for b in batches]),
            np.concatenate([b.step for b in batches]),
            np.concatenate([b.acc for b in batches]),
            np.concatenate([b.score for b in batches]),
            pa.concat_arrays([b.response for b in batches]) if with_resp else None,
            source,
        )
