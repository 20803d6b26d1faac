"""Per-prompt pass-rate statistics, updated from batches of scored-rollout records with vectorised numpy.

Definitions (per prompt, over every record ingested for it):

* ``attempts``: number of records (scored responses).
* ``correct``: number of records with ``acc == 1``.
* ``pass_rate`` = ``correct / attempts`` (NaN when ``attempts == 0``), the Metis-RISE pass rate
  (arXiv 2506.13056, Sec. "SFT Enhancement": the fraction of sampled responses that are correct).
* ``mean_score``: mean of the records' ``score``.
* ``first_step_solved``: smallest ``step`` of a record with ``acc == 1`` (-1: never solved).
* ``last_step_seen``: largest ``step`` of any record.
* Window: steps are grouped into consecutive windows of ``window_steps`` steps aligned on step 1, window
  ``w = floor((step - 1) / window_steps)`` (so with ``window_steps`` = verl's steps per epoch the windows are
  exactly verl's epochs, ``epoch = (global_step - 1) // steps_per_epoch``; step 0, the pre-training validation,
  is window -1). ``window_attempts`` / ``window_correct`` / ``window_pass_rate`` count only the prompt's records
  in the **latest window in which the prompt has any record**; records of an older window that arrive late
  count in the overall totals only. With ``window_steps=1`` this is the pass rate of the last step the prompt
  was drawn in (its latest GRPO group); with steps-per-epoch it is the pass rate over the last epoch.

Memory: about 32 bytes per prompt for the statistics plus the :class:`PromptIndex` (about 60 bytes).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from verl_rise.passrate.prompt_index import PromptIndex
from verl_rise.passrate.records import RecordBatch

INGEST_SLICE = 1 << 16
_NEVER = np.iinfo(np.int32).max  # first_step_solved sentinel while unsolved

# (state column, tracker attribute) of the per-prompt arrays; with "prompt_id" they are the saved state.
_STATE_ARRAYS = (
    ("attempts", "attempts"),
    ("correct", "correct"),
    ("score_sum", "score_sum"),
    ("first_step_solved", "first_solved"),
    ("last_step_seen", "last_seen"),
    ("window_attempts", "win_attempts"),
    ("window_correct", "win_correct"),
)
#: Schema of the saved state (:meth:`PassRateTracker.iter_state_batches`).
STATE_SCHEMA = pa.schema(
    [("prompt_id", pa.string())]
    + [(col, pa.float64() if col == "score_sum" else pa.int32()) for col, _ in _STATE_ARRAYS]
)
STATE_COLUMNS = tuple(STATE_SCHEMA.names)


class PassRateTracker:
    """Accumulates per-prompt statistics (see the module docstring for the exact definitions).

    Args:
        window_steps: steps per window (``>= 1``).

    Raises:
        ValueError: ``window_steps < 1``.
    """

    def __init__(self, window_steps: int = 1) -> None:
        if int(window_steps) != window_steps or window_steps < 1:
            raise ValueError(f"window_steps must be an integer >= 1, got {window_steps!r}")
        self.window_steps = int(window_steps)
        self.index = PromptIndex()
        self.total_records = 0
        self._cap = 0
        self._alloc(1024)

    # ----------------------------------------------------------------- storage
    def _alloc(self, cap: int) -> None:
        fields = {
            "attempts": (np.int32, 0),
            "correct": (np.int32, 0),
            "score_sum": (np.float64, 0.0),
            "first_solved": (np.int32, _NEVER),
            "last_seen": (np.int32, -1),
            "win_attempts": (np.int32, 0),
            "win_correct": (np.int32, 0),
        }
        for name, (dtype, fill) in fields.items():
            arr = np.full(cap, fill, dtype)
            prev = getattr(self, name, None)
            if prev is not None:
                arr[: len(prev)] = prev
            setattr(self, name, arr)
        self._cap = cap

    def _ensure_capacity(self, n: int) -> None:
        if n > self._cap:
            # 1.25x: little unused capacity at a million prompts, and only O(log n) regrowths.
            self._alloc(max(n, int(self._cap * 1.25)))

    @property
    def num_prompts(self) -> int:
        """Number of distinct prompt ids seen."""
        return len(self.index)

    # ----------------------------------------------------------------- ingest
    def ingest(self, batch: RecordBatch) -> None:
        """Add a validated batch of records (any order, any mix of steps and prompts).

        Cost: O(n) vectorised numpy for ``n`` records, plus O(P) when new prompts arrive (P = prompts known).
        Large batches are counted in slices of :data:`INGEST_SLICE` records, which bounds the temporary arrays
        (and the heap fragmentation they leave behind) whatever the caller's batch size.

        Raises:
            ValueError: a step is beyond the int32 range used for step columns.
            PromptIdCollision: see :class:`PromptIndex`.
        """
        for start in range(0, len(batch), INGEST_SLICE):
            self._ingest_slice(batch.slice(start, start + INGEST_SLICE))

    def _ingest_slice(self, batch: RecordBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        if int(batch.step.max()) >= _NEVER:
            raise ValueError(f"{batch.source}: step {int(batch.step.max())} does not fit in int32")
        dense_u, codes = self.index.lookup(batch.prompt_id, add=True)
        self._ensure_capacity(len(self.index))
        k = len(dense_u)
        step = batch.step.astype(np.int32)

        self.attempts[dense_u] += np.bincount(codes, minlength=k).astype(np.int32)
        correct_u = np.bincount(codes, weights=batch.acc, minlength=k)
        self.correct[dense_u] += correct_u.astype(np.int32)
        self.score_sum[dense_u] += np.bincount(codes, weights=batch.score, minlength=k)

        # The latest window with records is the window of the last step seen (windows grow with steps), so
        # the window id is derived from last_seen rather than stored.
        old_last = self.last_seen[dense_u]
        last_u = np.full(k, -1, np.int32)
        np.maximum.at(last_u, codes, step)
        new_last = np.maximum(old_last, last_u)
        self.last_seen[dense_u] = new_last

        solved = batch.acc == 1.0
        if solved.any():
            first_u = np.full(k, _NEVER, np.int32)
            np.minimum.at(first_u, codes[solved], step[solved])
            self.first_solved[dense_u] = np.minimum(self.first_solved[dense_u], first_u)

        old_win = self.window_of(old_last)
        new_win = self.window_of(new_last)
        reset = dense_u[new_win > old_win]
        self.win_attempts[reset] = 0
        self.win_correct[reset] = 0
        in_win = self.window_of(step) == new_win[codes]
        self.win_attempts[dense_u] += np.bincount(codes[in_win], minlength=k).astype(np.int32)
        self.win_correct[dense_u] += np.bincount(codes[in_win], weights=batch.acc[in_win], minlength=k).astype(
            np.int32
        )
        self.total_records += n

    # ----------------------------------------------------------------- views
    def window_of(self, step: np.ndarray) -> np.ndarray:
        """Window id of each step (int64): ``floor((step - 1) / window_steps)``; -1 (never seen) maps below all."""
        step = np.asarray(step, np.int64)
        return np.where(step >= 0, np.floor_divide(step - 1, self.window_steps), np.iinfo(np.int64).min)

    def counts(self, basis: str = "overall") -> tuple[np.ndarray, np.ndarray]:
        """``(attempts, correct)`` per prompt (int32 arrays of shape ``(num_prompts,)``, by dense id).

        Args:
            basis: ``"overall"`` (all records) or ``"window"`` (the latest window, see module docstring).

        Raises:
            ValueError: unknown basis.
        """
        n = self.num_prompts
        if basis == "overall":
            return self.attempts[:n], self.correct[:n]
        if basis == "window":
            return self.win_attempts[:n], self.win_correct[:n]
        raise ValueError(f"basis must be 'overall' or 'window', got {basis!r}")

    def stats_table(self) -> pa.Table:
        """Per-prompt statistics, one row per prompt id seen (column names as in the module docstring)."""
        n = self.num_prompts
        att, cor = self.attempts[:n], self.correct[:n]
        watt, wcor = self.win_attempts[:n], self.win_correct[:n]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(att > 0, cor / np.maximum(att, 1), np.nan)
            wrate = np.where(watt > 0, wcor / np.maximum(watt, 1), np.nan)
            mean_score = np.where(att > 0, self.score_sum[:n] / np.maximum(att, 1), np.nan)
        first = self.first_solved[:n].astype(np.int64)
        first[first == _NEVER] = -1
        return pa.table(
            {
                "prompt_id": self.index.strings(),
                "attempts": att.astype(np.int64),
                "correct": cor.astype(np.int64),
                "pass_rate": rate,
                "window_attempts": watt.astype(np.int64),
                "window_correct": wcor.astype(np.int64),
                "window_pass_rate": wrate,
                "mean_score": mean_score,
                "first_step_solved": first,
                "last_step_seen": self.last_seen[:n].astype(np.int64),
            }
        )

    # ----------------------------------------------------------------- state
    def iter_state_batches(self, rows: int = INGEST_SLICE) -> Iterator[pa.RecordBatch]:
        """The state (:data:`STATE_SCHEMA`) in slices of ``rows`` prompts, copied slice by slice, so a
        snapshot of a million prompts never holds a second full copy of the statistics."""
        n = self.num_prompts
        ids = self.index.strings_chunked()
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            arrays = [ids.slice(start, stop - start).combine_chunks()]
            arrays += [pa.array(getattr(self, attr)[start:stop].copy()) for _, attr in _STATE_ARRAYS]
            yield pa.RecordBatch.from_arrays(arrays, schema=STATE_SCHEMA)

    def state_table(self) -> pa.Table:
        """Everything needed to rebuild this tracker exactly (:data:`STATE_SCHEMA`), as one table."""
        return pa.Table.from_batches(list(self.iter_state_batches()), schema=STATE_SCHEMA)

    @classmethod
    def from_state_batches(
        cls,
        batches: Iterable[pa.RecordBatch],
        *,
        window_steps: int,
        total_records: int,
        num_prompts: int | None = None,
    ) -> "PassRateTracker":
        """Rebuild a tracker from :meth:`iter_state_batches` output (e.g. streamed from a snapshot file).

        Args:
            num_prompts: the number of rows, when known (a parquet footer says): the arrays are then sized once.

        Raises:
            ValueError: a column is missing, or the prompt ids are duplicated or null.
        """
        tracker = cls(window_steps)
        if num_prompts and num_prompts > tracker._cap:
            tracker._alloc(num_prompts)
        def prompt_ids() -> Iterator[pa.StringArray]:
            # Fills the statistics of each part while the index takes its ids (one pass over the stream).
            start = 0
            for batch in batches:
                missing = [c for c in STATE_SCHEMA.names if c not in batch.schema.names]
                if missing:
                    raise ValueError(f"pass-rate state is missing column(s) {missing}")
                stop = start + batch.num_rows
                tracker._ensure_capacity(stop)
                for col, attr in _STATE_ARRAYS:
                    arr = getattr(tracker, attr)
                    arr[start:stop] = batch.column(col).to_numpy().astype(arr.dtype, copy=False)
                yield batch.column("prompt_id")
                start = stop

        tracker.index.extend_distinct(prompt_ids())
        tracker.total_records = int(total_records)
        return tracker

    @classmethod
    def from_state_table(cls, table: pa.Table, *, window_steps: int, total_records: int) -> "PassRateTracker":
        """Rebuild a tracker from :meth:`state_table` output (see :meth:`from_state_batches`)."""
        return cls.from_state_batches(
            table.to_batches(), window_steps=window_steps, total_records=total_records, num_prompts=table.num_rows
        )

    def equals(self, other: "PassRateTracker", rtol: float = 1e-9) -> bool:
        """True when both trackers hold the same statistics for the same prompt ids, in any id order.

        Counts and steps must be identical; ``score_sum`` may differ by ``rtol`` (float sums depend on the
        order in which records were added).
        """
        a, b = self.state_table().sort_by("prompt_id"), other.state_table().sort_by("prompt_id")
        if a.num_rows != b.num_rows or self.total_records != other.total_records:
            return False
        for col in STATE_COLUMNS:
            x, y = a.column(col), b.column(col)
            if col == "score_sum":
                if not np.allclose(x.to_numpy(), y.to_numpy(), rtol=rtol, atol=0.0):
                    return False
            elif not x.equals(y):
                return False
        return True
