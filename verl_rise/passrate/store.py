"""The tracker directory on disk: record shards (a write-ahead log) and state snapshots.

Layout::

    <dir>/records/step_<step:010d>/<producer>-<seq:06d>.parquet   records of one step from one producer
    <dir>/snapshots/step_<step:010d>.parquet                       tracker state after that step

Exactly-once rules:

* A shard is published with a no-clobber atomic create (``data_prep.atomic.atomic_path(replace=False)``) under a
  name unique to its producer and step, and never rewritten; so several producers (processes, reward workers,
  dump importers) can write side by side without locks, and a crash leaves either the whole shard or nothing.
* Every shard has a key (its path relative to ``records/``). A snapshot stores the set of keys already counted
  in it, so merging is idempotent: a shard is counted once however often merges run.
* Resuming from step ``N`` deletes the shards and snapshots of steps ``> N`` (verl replays those steps).
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_prep.atomic import atomic_path, remove_stale_temps
from verl_rise.passrate.records import RecordBatch, RecordError

SNAPSHOT_META_KEY = b"verl_rise.passrate"
SNAPSHOT_FORMAT = 1
_STEP_DIR = re.compile(r"^step_(\d{10})$")
_SNAPSHOT = re.compile(r"^step_(\d{10})\.parquet$")
_SHARD = re.compile(r"^(?P<producer>[A-Za-z0-9_.\-]+)-(?P<seq>\d{6})\.parquet$")
_PRODUCER = re.compile(r"^[A-Za-z0-9_.\-]+$")


def shard_step(key: str) -> int:
    """The step of a shard key ``step_<step:010d>/<producer>-<seq>.parquet``.

    Raises:
        ValueError: not a shard key.
    """
    m = _STEP_DIR.match(key.split("/", 1)[0])
    if not m:
        raise ValueError(f"not a record shard key: {key!r}")
    return int(m.group(1))


def default_producer_id() -> str:
    """A producer id unique to this process: ``<hostname>-<pid>`` (characters outside [A-Za-z0-9_.-] -> '_')."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{socket.gethostname()}-{os.getpid()}")


class RecordStore:
    """Read and write one tracker directory (see the module docstring).

    Args:
        root: the tracker directory.
        create: create it when missing (False for readers: a missing directory then reads as empty).
    """

    def __init__(self, root: str | os.PathLike, *, create: bool = True) -> None:
        self.root = Path(root)
        self.records_dir = self.root / "records"
        self.snapshots_dir = self.root / "snapshots"
        if create:
            self.records_dir.mkdir(parents=True, exist_ok=True)
            self.snapshots_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ shards
    def append(self, batch: RecordBatch, *, producer: str) -> list[str]:
        """Write a validated batch as one shard per step it contains.

        Args:
            batch: records to persist.
            producer: id of the writing process (``[A-Za-z0-9_.-]+``); must not be shared by two processes
                writing at the same time (use :func:`default_producer_id`).

        Returns:
            The keys of the shards written (empty for an empty batch), in step order.

        Raises:
            ValueError: bad producer id.
        """
        if not _PRODUCER.match(producer):
            raise ValueError(f"producer id must match [A-Za-z0-9_.-]+, got {producer!r}")
        if len(batch) == 0:
            return []
        table = batch.to_arrow()
        keys = []
        steps = np.unique(batch.step)
        for step in steps:
            part = table if len(steps) == 1 else table.filter(pa.array(batch.step == step))
            keys.append(self._publish(part, int(step), producer))
        return keys

    def _publish(self, table: pa.Table, step: int, producer: str) -> str:
        step_dir = self.records_dir / f"step_{step:010d}"
        step_dir.mkdir(parents=True, exist_ok=True)
        seq = 1 + max(
            (int(m["seq"]) for p in step_dir.iterdir() if (m := _SHARD.match(p.name)) and m["producer"] == producer),
            default=-1,
        )
        while True:
            name = f"{producer}-{seq:06d}.parquet"
            try:
                with atomic_path(step_dir / name, replace=False) as tmp:
                    pq.write_table(table, tmp)
                return f"{step_dir.name}/{name}"
            except FileExistsError:
                seq += 1

    def shard_keys(self, upto_step: int | None = None) -> list[tuple[int, str]]:
        """``(step, key)`` of every published shard with ``step <= upto_step`` (all when None), sorted."""
        out = []
        if not self.records_dir.is_dir():
            return out
        for step_dir in self.records_dir.iterdir():
            m = _STEP_DIR.match(step_dir.name)
            if not m or not step_dir.is_dir():
                continue
            step = int(m.group(1))
            if upto_step is not None and step > upto_step:
                continue
            out.extend((step, f"{step_dir.name}/{p.name}") for p in step_dir.iterdir() if _SHARD.match(p.name))
        return sorted(out)

    def shard_path(self, key: str) -> Path:
        return self.records_dir / key

    def read_shard(self, key: str, *, with_response: bool = True) -> RecordBatch:
        """Read and validate one shard.

        Raises:
            RecordError: the shard holds a bad record (the message names the shard file and record).
        """
        path = self.shard_path(key)
        columns = None
        if not with_response:
            names = pq.read_schema(path).names
            columns = [c for c in names if c != "response"]
        table = pq.read_table(path, columns=columns)
        batch = RecordBatch.from_arrow(table, source=str(path))
        step = shard_step(key)
        if len(batch) and (batch.step != step).any():
            i = int(np.flatnonzero(batch.step != step)[0])
            raise RecordError(f"{path}: record {i}: field 'step' is {int(batch.step[i])} in a shard of step {step}")
        return batch

    def shard_has_responses(self, key: str) -> bool:
        return "response" in pq.read_schema(self.shard_path(key)).names

    # ------------------------------------------------------------------ snapshots
    def snapshot_steps(self) -> list[int]:
        if not self.snapshots_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.snapshots_dir.iterdir() if (m := _SNAPSHOT.match(p.name)))

    def snapshot_path(self, step: int) -> Path:
        return self.snapshots_dir / f"step_{step:010d}.parquet"

    def write_snapshot(self, step: int, batches: Iterable[pa.RecordBatch], schema: pa.Schema, meta: dict) -> Path:
        """Write the tracker state after ``step`` atomically (replacing an older snapshot of the same step).

        Args:
            step: the step the state is complete for.
            batches: the state, streamed (:meth:`PassRateTracker.iter_state_batches`).
            schema: their schema.
            meta: JSON-serialisable metadata stored in the file's schema metadata.
        """
        full_meta = {"format": SNAPSHOT_FORMAT, "step": step, **meta}
        schema = schema.with_metadata({SNAPSHOT_META_KEY: json.dumps(full_meta).encode()})
        with atomic_path(self.snapshot_path(step)) as tmp:
            with pq.ParquetWriter(tmp, schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
        return self.snapshot_path(step)

    def snapshot_meta(self, step: int) -> dict:
        """Metadata of the snapshot of ``step`` (reads the footer only).

        Raises:
            ValueError: not a pass-rate snapshot, or a format this version cannot read.
        """
        path = self.snapshot_path(step)
        raw = (pq.read_schema(path).metadata or {}).get(SNAPSHOT_META_KEY)
        if raw is None:
            raise ValueError(f"{path}: not a pass-rate snapshot (no {SNAPSHOT_META_KEY.decode()} metadata)")
        meta = json.loads(raw)
        if meta.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"{path}: snapshot format {meta.get('format')!r}, this version reads {SNAPSHOT_FORMAT}")
        return meta

    def snapshot_rows(self, step: int) -> int:
        """Number of prompts in the snapshot of ``step`` (from the parquet footer)."""
        return pq.ParquetFile(self.snapshot_path(step)).metadata.num_rows

    def iter_snapshot(self, step: int, batch_size: int = 1 << 16) -> Iterator[pa.RecordBatch]:
        """The state rows of the snapshot of ``step``, streamed in batches."""
        # Row group by row group with a small read buffer: a resumed run never holds the whole file decoded.
        reader = pq.ParquetFile(self.snapshot_path(step), memory_map=False, pre_buffer=False, buffer_size=1 << 20)
        yield from reader.iter_batches(batch_size=batch_size)

    def prune_snapshots(self, keep: int) -> int:
        """Delete all but the newest ``keep`` snapshots (``keep >= 1``). Returns how many were deleted."""
        steps = self.snapshot_steps()
        doomed = steps[:-keep] if keep >= 1 else []
        for step in doomed:
            self.snapshot_path(step).unlink(missing_ok=True)
        return len(doomed)

    # ------------------------------------------------------------------ resume
    def truncate_after(self, step: int) -> tuple[int, int]:
        """Delete shards and snapshots of steps ``> step`` and leftovers of killed writes.

        Only for the single driver at start-up (it deletes other writers' temporary files too).

        Returns:
            ``(shards_deleted, snapshots_deleted)``.
        """
        remove_stale_temps(self.root)
        shards = 0
        for step_dir in self.records_dir.iterdir():
            m = _STEP_DIR.match(step_dir.name)
            if m and int(m.group(1)) > step:
                for p in step_dir.iterdir():
                    p.unlink()
                    shards += 1
                step_dir.rmdir()
        snaps = 0
        for s in self.snapshot_steps():
            if s > step:
                self.snapshot_path(s).unlink()
                snaps += 1
        return shards, snaps
