"""Persistence: kill-and-resume equality (including kills during a save), and no double counting with several
producers writing the same tracker directory."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data_prep.atomic import TEMP_GLOB
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
from verl_rise.passrate.records import RecordBatch, RecordError
from verl_rise.passrate.store import RecordStore
from tests.support.paths import REPO_ROOT


# Shared with the child processes below, so parent and child generate the same records for a step (as a resumed
# verl run regenerates the records of replayed steps).
RECORDS_SRC = '''
import numpy as np
from verl_rise.passrate.records import RecordBatch

def step_records(step, n=64, prompts=40):
    rng = np.random.default_rng(1000 + step)
    pid = [f"prompt-{i:03d}" for i in rng.integers(0, prompts, n)]
    acc = rng.integers(0, 2, n).astype(float)
    return RecordBatch.from_columns(pid, np.full(n, step), acc, 0.9 * acc + 0.1, source=f"step {step}")
'''
exec(RECORDS_SRC)  # defines step_records


def _config(tmp_path: Path, **kw) -> PassRateConfig:
    return PassRateConfig(dir=str(tmp_path / "passrate"), window_steps=2, histogram=False, **kw)


def _reference(tmp_path: Path, last_step: int) -> PassRateRecorder:
    ref = PassRateRecorder(PassRateConfig(dir=str(tmp_path / "reference"), window_steps=2, histogram=False))
    for step in range(1, last_step + 1):
        ref.record(step_records(step))
    return ref


# --------------------------------------------------------------------------- in-process kills
@pytest.mark.parametrize(
    "kill_step, stage, resume_step",
    [
        (5, "mid_step", 4),  # records of step 5 written, no checkpoint of step 5: verl resumes from 4
        (6, "after_latest_before_on_save", 6),  # verl wrote latest_checkpointed_iteration=6, callback never ran
        (6, "after_on_save", 6),
        (1, "mid_step", 0),  # killed before the first checkpoint: verl starts from scratch
    ],
)
def test_killed_and_resumed_run_ends_with_the_same_totals(tmp_path, kill_step, stage, resume_step):
    total_steps, save_freq = 9, 2
    cfg = _config(tmp_path)
    run = PassRateRecorder(cfg)
    for step in range(1, kill_step + 1):
        run.record(step_records(step))
        run.step_metrics()
        is_save = step % save_freq == 0
        if is_save and not (step == kill_step and stage == "after_latest_before_on_save"):
            run.save(step)
    del run  # the kill: everything in memory is gone

    resumed = PassRateRecorder(cfg)
    report = resumed.restore(resume_step)
    assert report["step"] == resume_step
    assert resumed.tracker.equals(_reference(tmp_path, resume_step).tracker)
    for step in range(resume_step + 1, total_steps + 1):
        resumed.record(step_records(step))
        if step % save_freq == 0 or step == total_steps:
            resumed.save(step)
    assert resumed.tracker.equals(_reference(tmp_path, total_steps).tracker)
    assert resumed.tracker.total_records == 64 * total_steps


def test_restore_discards_records_and_snapshots_of_later_steps(tmp_path):
    cfg = _config(tmp_path)
    run = PassRateRecorder(cfg)
    for step in range(1, 7):
        run.record(step_records(step))
        if step % 2 == 0:
            run.save(step)
    resumed = PassRateRecorder(cfg)
    report = resumed.restore(4)
    assert report["shards_discarded"] == 2 and report["snapshots_discarded"] == 1
    assert [s for s, _ in resumed.store.shard_keys()] == [1, 2, 3, 4]
    assert resumed.store.snapshot_steps() == [4]  # keep_snapshots=2 had pruned step 2 when 6 was saved
    # Resuming from an older checkpoint than any snapshot still works: the records rebuild the state.
    older = PassRateRecorder(cfg)
    older.restore(3)
    assert older.tracker.equals(_reference(tmp_path, 3).tracker)


def test_injected_failure_between_write_and_rename_keeps_the_previous_snapshot(tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    run = PassRateRecorder(cfg)
    for step in (1, 2):
        run.record(step_records(step))
    run.save(2)
    before = run.store.snapshot_path(2).read_bytes()
    for step in (3, 4):
        run.record(step_records(step))

    def failing_replace(src, dst):
        raise OSError("injected: disk gone between write and rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        run.save(4)
    monkeypatch.undo()
    assert run.store.snapshot_steps() == [2]
    assert run.store.snapshot_path(2).read_bytes() == before
    assert not list((tmp_path / "passrate").rglob(TEMP_GLOB)), "failed save must not leave its temp file"
    resumed = PassRateRecorder(cfg)
    resumed.restore(4)  # verl had finished checkpoint 4 before calling the callback
    assert resumed.tracker.equals(_reference(tmp_path, 4).tracker)


# --------------------------------------------------------------------------- real kills (SIGKILL mid-write)
CHILD_SRC = RECORDS_SRC + '''
import sys, time
import pyarrow.parquet as pq
from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder

tracker_dir, flag, phase = sys.argv[1], sys.argv[2], sys.argv[3]
rec = PassRateRecorder(PassRateConfig(dir=tracker_dir, window_steps=2, histogram=False))
rec.record(step_records(1)); rec.record(step_records(2)); rec.save(2)
real_write = pq.write_table

def torn_write(table, where, **kw):
    # Write half of the file, tell the parent, and wait to be killed mid-write.
    real_write(table, where, **kw)
    data = open(where, "rb").read()
    open(where, "wb").write(data[: len(data) // 2])
    open(flag, "w").write("writing")
    time.sleep(120)

real_write_batch = pq.ParquetWriter.write_batch

def stalled_write_batch(self, batch, *args, **kw):
    # Snapshots are streamed: write a first part, tell the parent, and wait to be killed mid-file.
    real_write_batch(self, batch, *args, **kw)
    open(flag, "w").write("writing")
    time.sleep(120)

if phase == "snapshot":
    rec.record(step_records(3)); rec.record(step_records(4))
    pq.ParquetWriter.write_batch = stalled_write_batch
    rec.save(4)
else:  # "shard": killed while publishing the records of step 3
    pq.write_table = torn_write
    rec.record(step_records(3))
'''


def _run_child_and_kill(tmp_path: Path, phase: str) -> Path:
    tracker_dir, flag = tmp_path / "passrate", tmp_path / "flag"
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    child = subprocess.Popen([sys.executable, "-c", CHILD_SRC, str(tracker_dir), str(flag), phase], env=env)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert child.poll() is None, f"child exited early with {child.returncode}"
            assert time.monotonic() < deadline, "child never reached the write"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    return tracker_dir


def test_sigkill_during_snapshot_write_leaves_previous_state_and_resume_is_exact(tmp_path):
    tracker_dir = _run_child_and_kill(tmp_path, "snapshot")
    store = RecordStore(tracker_dir)
    assert store.snapshot_steps() == [2], "the torn snapshot must not appear under its final name"
    assert list(tracker_dir.rglob(TEMP_GLOB)), "the kill happened mid-write, so a temp file is left behind"
    cfg = PassRateConfig(dir=str(tracker_dir), window_steps=2, histogram=False)
    snap2 = PassRateRecorder.open_readonly(cfg, upto_step=2)
    assert snap2.tracker.equals(_reference(tmp_path, 2).tracker)
    # verl wrote checkpoint 4 before calling the callback that was killed: it resumes from step 4.
    resumed = PassRateRecorder(cfg)
    resumed.restore(4)
    assert not list(tracker_dir.rglob(TEMP_GLOB))
    assert resumed.tracker.equals(_reference(tmp_path, 4).tracker)


def test_sigkill_during_shard_write_loses_nothing_after_replay(tmp_path):
    tracker_dir = _run_child_and_kill(tmp_path, "shard")
    cfg = PassRateConfig(dir=str(tracker_dir), window_steps=2, histogram=False)
    assert [s for s, _ in RecordStore(tracker_dir).shard_keys()] == [1, 2]
    resumed = PassRateRecorder(cfg)
    resumed.restore(2)  # no checkpoint of step 3: verl replays it
    for step in (3, 4):
        resumed.record(step_records(step))
    assert resumed.tracker.equals(_reference(tmp_path, 4).tracker)


# --------------------------------------------------------------------------- several producers
def _produce(tracker_dir: str, producer: str, seed: int) -> None:
    store = RecordStore(tracker_dir)
    rng = np.random.default_rng(seed)
    for step in range(1, 6):
        for _ in range(3):
            n = 50
            pid = [f"p{i}" for i in rng.integers(0, 30, n)]
            acc = rng.integers(0, 2, n).astype(float)
            store.append(RecordBatch.from_columns(pid, np.full(n, step), acc, acc, source=producer), producer=producer)


def _expected_correct(seeds) -> tuple[int, int]:
    records = correct = 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for _ in range(5 * 3):
            rng.integers(0, 30, 50)
            acc = rng.integers(0, 2, 50)
            records += 50
            correct += int(acc.sum())
    return records, correct


def test_concurrent_producers_are_each_counted_exactly_once(tmp_path):
    tracker_dir = str(tmp_path / "passrate")
    RecordStore(tracker_dir)
    # Four processes, two of them (w2) even sharing a producer id: the no-clobber publish still keeps every shard.
    producers = [("w0", 10), ("w1", 11), ("w2", 12), ("w2", 13)]
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_produce, args=(tracker_dir, name, seed)) for name, seed in producers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    want_records, want_correct = _expected_correct([s for _, s in producers])

    cfg = PassRateConfig(dir=tracker_dir, window_steps=1, histogram=False)
    rec = PassRateRecorder(cfg)
    assert rec.merge() == want_records
    assert rec.merge() == 0, "merging again must not count anything twice"
    att, cor = rec.tracker.counts("overall")
    assert int(att.sum()) == want_records and int(cor.sum()) == want_correct
    assert len(rec.store.shard_keys()) == len(producers) * 5 * 3

    rec.save(5)
    # A late shard of an already-snapshotted step is picked up exactly once by the next reader.
    late = RecordBatch.from_columns(["p0", "p1"], [3, 3], [1.0, 0.0], [1.0, 0.0], source="late")
    RecordStore(tracker_dir).append(late, producer="late")
    reread = PassRateRecorder.open_readonly(cfg)
    assert reread.tracker.total_records == want_records + 2
    assert reread.merge() == 0


def test_a_corrupt_record_in_a_shard_is_an_error_naming_the_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = _config(tmp_path)
    store = RecordStore(cfg.dir)
    bad_dir = store.records_dir / "step_0000000003"
    bad_dir.mkdir(parents=True)
    table = pa.table({"prompt_id": ["a", "b"], "step": [3, 3], "acc": [1.0, 0.0], "score": [1.0, float("nan")]})
    pq.write_table(table, bad_dir / "other-000000.parquet")
    with pytest.raises(RecordError, match=r"other-000000\.parquet: record 1: field 'score' is NaN"):
        PassRateRecorder.open_readonly(cfg)


def test_shard_publish_never_overwrites_an_existing_file(tmp_path):
    from data_prep.atomic import atomic_path

    target = tmp_path / "shard.parquet"
    target.write_bytes(b"first")
    with pytest.raises(FileExistsError):
        with atomic_path(target, replace=False) as tmp:
            tmp.write_bytes(b"second")
    assert target.read_bytes() == b"first"
    assert not list(tmp_path.glob(TEMP_GLOB))
    # The store publishes under the next free sequence number instead.
    store = RecordStore(tmp_path / "passrate")
    batch = RecordBatch.from_columns(["p"], [1], [1.0], [1.0], source="t")
    first = store.append(batch, producer="w")
    (store.records_dir / "step_0000000001" / "w-000001.parquet").write_bytes(b"taken by someone else")
    second = store.append(batch, producer="w")
    assert first == ["step_0000000001/w-000000.parquet"] and second == ["step_0000000001/w-000002.parquet"]
