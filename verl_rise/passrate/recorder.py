"""The pass-rate recorder: tracker + tracker directory, with exactly-once persistence and resume.

Write path (one writer per producer id): validate -> publish the shard (no-clobber, atomic) -> count it in
memory -> remember its key. A snapshot written at checkpoint step ``N`` holds the statistics and the keys of the
shards counted in them. :meth:`PassRateRecorder.restore` to step ``N`` deletes everything of steps ``> N``
(verl replays those steps), loads the newest snapshot ``<= N`` and counts the shards of steps ``<= N`` that the
snapshot does not hold. So a kill anywhere (mid-shard, mid-snapshot, between verl writing
``latest_checkpointed_iteration.txt`` and calling the checkpoint callback) ends, after resume, with the same
totals as a run that never stopped, and nothing is counted twice.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from verl_rise.passrate.buckets import BUCKET_NAMES, BucketThresholds, bucket_metrics, classify
from verl_rise.passrate.records import RecordBatch
from verl_rise.passrate.store import RecordStore, shard_step
from verl_rise.passrate.tracker import STATE_SCHEMA, PassRateTracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassRateConfig:
    """User settings (the ``passrate`` block of the verl config, or CLI flags).

    Attributes:
        dir: tracker directory (records, snapshots, plots).
        window_steps: steps per window for the window pass rate (1: the prompt's latest step; verl's
            steps per epoch: the last epoch). See :mod:`verl_rise.passrate.tracker`.
        basis: pass rate used for buckets and metrics, ``"window"`` or ``"overall"``.
        solved_threshold, hard_threshold, min_attempts: bucket edges, see :mod:`verl_rise.passrate.buckets`.
        keep_snapshots: how many snapshots to keep (older ones are deleted; records are never deleted).
        prompt_id_key: key of the stable prompt id inside the dataset's ``extra_info``.
        histogram: write a pass-rate histogram PNG at every checkpoint.
    """

    dir: str
    window_steps: int = 1
    basis: str = "window"
    solved_threshold: float = 1.0
    hard_threshold: float = 0.0
    min_attempts: int = 1
    keep_snapshots: int = 2
    prompt_id_key: str = "prompt_id"
    histogram: bool = True

    def __post_init__(self) -> None:
        if self.basis not in ("window", "overall"):
            raise ValueError(f"passrate.basis must be 'window' or 'overall', got {self.basis!r}")
        if int(self.keep_snapshots) != self.keep_snapshots or self.keep_snapshots < 1:
            raise ValueError(f"passrate.keep_snapshots must be an integer >= 1, got {self.keep_snapshots!r}")
        if int(self.window_steps) != self.window_steps or self.window_steps < 1:
            raise ValueError(f"passrate.window_steps must be an integer >= 1, got {self.window_steps!r}")
        self.thresholds  # noqa: B018 - validates the bucket edges now rather than at the first step

    @property
    def thresholds(self) -> BucketThresholds:
        return BucketThresholds(self.solved_threshold, self.hard_threshold, self.min_attempts)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> "PassRateConfig":
        """Build from a dict or OmegaConf node.

        Raises:
            ValueError: ``dir`` missing, an unknown key (the message lists the known ones), or a bad value.
        """
        data = dict(mapping or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown passrate option(s) {unknown}; known: {sorted(known)}")
        if not data.get("dir"):
            raise ValueError("passrate.dir is required (e.g. ${trainer.default_local_dir}/passrate)")
        data["dir"] = str(data["dir"])
        return cls(**data)


class PassRateRecorder:
    """Records scored rollouts into a tracker directory and keeps the statistics in memory.

    Args:
        config: settings; ``config.dir`` is created when missing.
        producer: this writer's id (unique among processes writing the same directory at the same time).
        create: create ``config.dir`` when missing (False for read-only use).
    """

    def __init__(self, config: PassRateConfig, producer: str = "driver", *, create: bool = True) -> None:
        self.config = config
        self.producer = producer
        self.store = RecordStore(config.dir, create=create)
        self.tracker = PassRateTracker(config.window_steps)
        self.ingested: set[str] = set()
        self._prev_codes = np.empty(0, np.int8)
        self._records_since_metrics = 0

    # ------------------------------------------------------------------ write path
    def record(self, batch: RecordBatch) -> list[str]:
        """Persist a validated batch (one shard per step) and count it. Returns the shard keys."""
        keys = self.store.append(batch, producer=self.producer)
        self.tracker.ingest(batch)
        self.ingested.update(keys)
        self._records_since_metrics += len(batch)
        return keys

    def merge(self, upto_step: int | None = None) -> int:
        """Count every shard of steps ``<= upto_step`` (all when None) not counted yet; idempotent.

        This is how records of other producers (other processes, dump importers) join.

        Returns:
            Number of records counted by this call.

        Raises:
            RecordError: a shard holds a bad record (names the shard file and record).
        """
        added = 0
        for _, key in self.store.shard_keys(upto_step):
            if key in self.ingested:
                continue
            batch = self.store.read_shard(key, with_response=False)
            self.tracker.ingest(batch)
            self.ingested.add(key)
            added += len(batch)
        self._records_since_metrics += added
        return added

    # ------------------------------------------------------------------ persistence
    def save(self, step: int) -> Path:
        """Snapshot the state after ``step`` atomically; prune old snapshots; write the histogram PNG.

        Returns:
            The snapshot path.

        Raises:
            ValueError: a counted shard belongs to a step after ``step`` (the snapshot would then claim records
                that a resume to ``step`` must discard).
        """
        late = [k for k in self.ingested if shard_step(k) > step]
        if late:
            raise ValueError(f"cannot snapshot step {step}: shards of later steps are already counted: {late[:3]}")
        meta = {
            "window_steps": self.config.window_steps,
            "total_records": self.tracker.total_records,
            "ingested": sorted(self.ingested),
        }
        path = self.store.write_snapshot(step, self.tracker.iter_state_batches(), STATE_SCHEMA, meta)
        self.store.prune_snapshots(self.config.keep_snapshots)
        if self.config.histogram:
            self.write_histogram(self.store.root / "plots" / f"pass_rate_step_{step:010d}.png", f"step {step}")
        return path

    def _load(self, upto_step: int | None) -> None:
        steps = [s for s in self.store.snapshot_steps() if upto_step is None or s <= upto_step]
        tracker, ingested = PassRateTracker(self.config.window_steps), set()
        for snap_step in reversed(steps):
            try:
                meta = self.store.snapshot_meta(snap_step)
                if meta.get("window_steps") != self.config.window_steps:
                    logger.warning(
                        "pass-rate snapshot of step %d used window_steps=%s, config says %s: rebuilding from records",
                        snap_step,
                        meta.get("window_steps"),
                        self.config.window_steps,
                    )
                    break
                tracker = PassRateTracker.from_state_batches(
                    self.store.iter_snapshot(snap_step),
                    window_steps=self.config.window_steps,
                    total_records=meta["total_records"],
                    num_prompts=self.store.snapshot_rows(snap_step),
                )
            except Exception as exc:  # noqa: BLE001 - an older snapshot plus the records rebuild the same state
                logger.warning("pass-rate snapshot of step %d unreadable (%s); trying an older one", snap_step, exc)
                continue
            ingested = set(meta["ingested"])
            break
        self.tracker, self.ingested = tracker, ingested
        self.merge(upto_step)
        self._prev_codes = self.classify()
        self._records_since_metrics = 0

    def restore(self, step: int) -> dict[str, int]:
        """Resume at the end of ``step``: drop later shards/snapshots, reload, count missing shards.

        Only the driver may call this, at start-up (it also deletes leftovers of killed writes).

        Returns:
            ``{"step", "shards_discarded", "snapshots_discarded", "records"}``.
        """
        shards, snaps = self.store.truncate_after(step)
        self._load(step)
        report = {
            "step": step,
            "shards_discarded": shards,
            "snapshots_discarded": snaps,
            "records": self.tracker.total_records,
        }
        if shards or snaps:
            logger.warning("pass-rate tracker resumed at step %d: discarded %s", step, report)
        return report

    @classmethod
    def open_readonly(cls, config: PassRateConfig, upto_step: int | None = None) -> "PassRateRecorder":
        """Load a tracker directory without changing it (export, inspection). Counts every shard ``<= upto_step``.

        Raises:
            FileNotFoundError: ``config.dir`` does not exist.
        """
        if not Path(config.dir).is_dir():
            raise FileNotFoundError(f"pass-rate tracker directory not found: {config.dir}")
        rec = cls(config, create=False)
        rec._load(upto_step)
        return rec

    # ------------------------------------------------------------------ views
    def pass_rate(self) -> np.ndarray:
        """Pass rate per prompt on the configured basis, float64 ``(P,)`` (NaN: no attempts)."""
        att, cor = self.tracker.counts(self.config.basis)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(att > 0, cor / np.maximum(att, 1), np.nan)

    def classify(self) -> np.ndarray:
        """Bucket code per prompt on the configured basis (int8 ``(P,)``)."""
        att, cor = self.tracker.counts(self.config.basis)
        return classify(att, cor, self.config.thresholds)

    def step_metrics(self) -> dict[str, float]:
        """Metrics for this step (see :func:`bucket_metrics`) plus ``passrate/step_records`` (records counted
        since the previous call) and ``passrate/total_records``; remembers the buckets for the next call."""
        codes = self.classify()
        out = bucket_metrics(codes, self._prev_codes, self.pass_rate())
        out["passrate/step_records"] = float(self._records_since_metrics)
        out["passrate/total_records"] = float(self.tracker.total_records)
        self._prev_codes = codes
        self._records_since_metrics = 0
        return out

    def summary(self) -> dict[str, Any]:
        """Bucket counts, totals and settings, JSON-serialisable."""
        codes = self.classify()
        counts = np.bincount(codes, minlength=4)
        return {
            "prompts": int(len(codes)),
            "records": int(self.tracker.total_records),
            "buckets": {name: int(counts[i]) for i, name in enumerate(BUCKET_NAMES)},
            "config": asdict(self.config),
        }

    def write_histogram(self, path: str | os.PathLike, title: str) -> Path:
        from verl_rise.passrate.plots import write_histogram

        return write_histogram(path, self.pass_rate(), self.classify(), self.config.thresholds, title)
