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

Memory: about 32 bytes per prompt for the statistics plus the :class:`PromptIndex` (about 52 bytes).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from verl_rise.passrate.prompt_index import PromptIndex
from verl_rise.passrate.records import RecordBatch

_NEVER = np.iinfo(np.int32).max  # first_step_solved sentinel while unsolved
_NO_WINDOW = np.iinfo(np.int32).min

#: Columns of :meth:`PassRateTracker.state_table` (the saved state) in order.
STATE_COLUMNS = (
    "prompt_id",
    "attempts",
    "correct",
    "score_sum",
    "first_step_solved",
    "last_step_seen",
    "window_id",
    "window_attempts",
    "window_correct",
)


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
            "win_id": (np.int32, _NO_WINDOW),
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
            self._alloc(max(n, int(self._cap * 1.5)))

    @property
    def num_prompts(self) -> int:
        """Number of distinct prompt ids seen."""
        return len(self.index)

    # ----------------------------------------------------------------- ingest
    def ingest(self, batch: RecordBatch) -> None:
        """Add a validated batch of records (any order, any mix of steps and prompts).

        Cost: O(n) vectorised numpy for ``n`` records, plus O(P) when new prompts arrive (P = prompts known).

        Raises:
            ValueError: a step is beyond the int32 range used for step columns.
            PromptIdCollision: see :class:`PromptIndex`.
        """
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

        last_u = np.full(k, -1, np.int32)
        np.maximum.at(last_u, codes, step)
        self.last_seen[dense_u] = np.maximum(self.last_seen[dense_u], last_u)

        solved = batch.acc == 1.0
        if solved.any():
            first_u = np.full(k, _NEVER, np.int32)
            np.minimum.at(first_u, codes[solved], step[solved])
            self.first_solved[dense_u] = np.minimum(self.first_solved[dense_u], first_u)

        rec_win = np.floor_divide(batch.step - 1, self.window_steps).astype(np.int32)
        win_u = np.full(k, _NO_WINDOW, np.int32)
        np.maximum.at(win_u, codes, rec_win)
        old = self.win_id[dense_u]
        new = np.maximum(old, win_u)
        moved_on = new > old
        reset = dense_u[moved_on]
        self.win_attempts[reset] = 0
        self.win_correct[reset] = 0
        self.win_id[dense_u] = new
        in_win = rec_win == new[codes]
        self.win_attempts[dense_u] += np.bincount(codes[in_win], minlength=k).astype(np.int32)
        self.win_correct[dense_u] += np.bincount(codes[in_win], weights=batch.acc[in_win], minlength=k).astype(
            np.int32
        )
        self.total_records += n

    # ----------------------------------------------------------------- views
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
    def state_table(self) -> pa.Table:
        """Everything needed to rebuild this tracker exactly (:data:`STATE_COLUMNS`)."""
        n = self.num_prompts
        return pa.table(
            {
                "prompt_id": self.index.strings(),
                "attempts": self.attempts[:n].copy(),
                "correct": self.correct[:n].copy(),
                "score_sum": self.score_sum[:n].copy(),
                "first_step_solved": self.first_solved[:n].copy(),
                "last_step_seen": self.last_seen[:n].copy(),
                "window_id": self.win_id[:n].copy(),
                "window_attempts": self.win_attempts[:n].copy(),
                "window_correct": self.win_correct[:n].copy(),
            }
        )

    @classmethod
    def from_state_table(cls, table: pa.Table, *, window_steps: int, total_records: int) -> "PassRateTracker":
        """Rebuild a tracker from :meth:`state_table` output.

        Raises:
            ValueError: a column is missing, or the prompt ids are duplicated or null.
        """
        missing = [c for c in STATE_COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(f"pass-rate state is missing column(s) {missing}")
        tracker = cls(window_steps)
        strings = table.column("prompt_id").combine_chunks()
        tracker.index = PromptIndex.from_strings(strings)
        n = len(strings)
        tracker._alloc(max(n, 1024))
        for col, attr in (
            ("attempts", "attempts"),
            ("correct", "correct"),
            ("score_sum", "score_sum"),
            ("first_step_solved", "first_solved"),
            ("last_step_seen", "last_seen"),
            ("window_id", "win_id"),
            ("window_attempts", "win_attempts"),
            ("window_correct", "win_correct"),
        ):
            arr = getattr(tracker, attr)
            arr[:n] = table.column(col).to_numpy().astype(arr.dtype)
        tracker.total_records = int(total_records)
        return tracker

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
