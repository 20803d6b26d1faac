"""Pass-rate tracker at scale: ingest N records over P prompts, snapshot, export.

    PYTHONPATH=. python benchmarks/bench_passrate.py                      # 10M records, 1M prompts
    PYTHONPATH=. python benchmarks/bench_passrate.py --records 1000000 --prompts 100000

Goals (issue 5): at least 1M records/s and under 300 MB peak RSS for 10M records over 1M prompts; the export time
is reported. Each phase runs in its own process so its peak RSS (``ru_maxrss``) is its own:

* ``ingest``: validation (:class:`RecordBatch`) + :meth:`PassRateTracker.ingest` of every record, then a snapshot
  write and reload. Records arrive as Arrow batches (as read from record shards) of 32-hex-character prompt ids
  (data_prep's id format); generating them is timed separately and not counted.
* ``recorder``: the full write path of a run (validate, publish the shard, count), on a slice of the records.
* ``export``: ``export`` of a P-row dataset parquet against the snapshot.
* ``baseline``: the straightforward pure-Python way (a dict of per-prompt counters, one record at a time) on a
  slice, to put the tracker's rate in proportion (ratio printed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def prompt_ids(indices: np.ndarray) -> pa.StringArray:
    """The 32-hex-char id of each prompt number (distinct numbers -> distinct ids: splitmix64 is a bijection).

    Built straight into an Arrow buffer, so the benchmark holds no id table and no Python strings.
    """
    x = indices.astype(np.uint64)
    raw = np.stack([_splitmix64(x), _splitmix64(x ^ np.uint64(0x5DEECE66D))], axis=1).view(np.uint8)
    data = np.empty((len(x), 32), np.uint8)
    data[:, 0::2] = HEX[raw >> 4]
    data[:, 1::2] = HEX[raw & 15]
    offsets = np.arange(0, 32 * len(x) + 1, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(len(x), pa.py_buffer(offsets), pa.py_buffer(data))


def record_batches(args, limit: int | None = None):
    """Deterministic record batches: uniform prompts, steps rising with the batch index, acc ~ Bernoulli(0.4)."""
    rng = np.random.default_rng(1)
    total = args.records if limit is None else min(limit, args.records)
    steps_per_batch = max(1, args.steps * args.batch_size // args.records)
    for b, start in enumerate(range(0, total, args.batch_size)):
        n = min(args.batch_size, total - start)
        pid = prompt_ids(rng.integers(0, args.prompts, n))
        step = 1 + b * steps_per_batch + rng.integers(0, steps_per_batch, n)
        acc = (rng.random(n) < 0.4).astype(np.float64)
        yield pid, step, acc, 0.9 * acc + 0.1 * (rng.random(n) < 0.9)


def phase_ingest(args) -> dict:
    from verl_rise.passrate.records import RecordBatch
    from verl_rise.passrate.store import RecordStore
    from verl_rise.passrate.tracker import STATE_SCHEMA, PassRateTracker

    tracker = PassRateTracker(window_steps=args.window_steps)
    gen_s = ingest_s = 0.0
    it = record_batches(args)
    bar = tqdm(total=args.records, unit="rec", unit_scale=True, desc="ingest", disable=args.quiet)
    while True:
        t0 = time.perf_counter()
        try:
            pid, step, acc, score = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        tracker.ingest(RecordBatch.from_columns(pid, step, acc, score, source="bench"))
        t2 = time.perf_counter()
        gen_s += t1 - t0
        ingest_s += t2 - t1
        bar.update(len(step))
    bar.close()
    peak_ingest = peak_rss_mb()
    store = RecordStore(Path(args.workdir) / "stats")
    t0 = time.perf_counter()
    meta = {"window_steps": args.window_steps, "total_records": tracker.total_records, "ingested": []}
    store.write_snapshot(args.steps, tracker.iter_state_batches(), STATE_SCHEMA, meta)
    save_s = time.perf_counter() - t0
    return {
        "records": tracker.total_records,
        "prompts_seen": tracker.num_prompts,
        "ingest_s": ingest_s,
        "records_per_s": tracker.total_records / ingest_s,
        "generate_s": gen_s,
        "peak_rss_mb": peak_ingest,
        "snapshot_save_s": save_s,
        "peak_rss_with_save_mb": peak_rss_mb(),
        "snapshot_mb": store.snapshot_path(args.steps).stat().st_size / 2**20,
    }


def phase_restore(args) -> dict:
    """A resumed run: rebuild the tracker from the snapshot written by the ingest phase."""
    from verl_rise.passrate.store import RecordStore
    from verl_rise.passrate.tracker import PassRateTracker

    store = RecordStore(Path(args.workdir) / "stats")
    t0 = time.perf_counter()
    meta = store.snapshot_meta(args.steps)
    tracker = PassRateTracker.from_state_batches(store.iter_snapshot(args.steps), window_steps=args.window_steps,
                                                 total_records=meta["total_records"],
                                                 num_prompts=store.snapshot_rows(args.steps))
    seconds = time.perf_counter() - t0
    assert tracker.total_records == args.records
    return {"prompts": tracker.num_prompts, "load_s": seconds, "peak_rss_mb": peak_rss_mb()}


def phase_recorder(args) -> dict:
    from verl_rise.passrate.recorder import PassRateConfig, PassRateRecorder
    from verl_rise.passrate.records import RecordBatch

    rec = PassRateRecorder(PassRateConfig(dir=str(Path(args.workdir) / "recorder"), histogram=False))
    n = 0
    t_total = 0.0
    for pid, step, acc, score in record_batches(args, limit=args.recorder_records):
        t0 = time.perf_counter()
        rec.record(RecordBatch.from_columns(pid, step, acc, score, source="bench"))
        t_total += time.perf_counter() - t0
        n += len(step)
    return {"records": n, "records_per_s": n / t_total, "seconds": t_total, "peak_rss_mb": peak_rss_mb()}


def phase_export(args) -> dict:
    from verl_rise.passrate.export import export

    ids = prompt_ids(np.arange(args.prompts))
    dataset = Path(args.workdir) / "dataset.parquet"
    extra = pa.StructArray.from_arrays(
        [ids, pa.array(np.arange(args.prompts)), pa.array(np.full(args.prompts, "train"))],
        names=["prompt_id", "index", "split"],
    )
    pq.write_table(
        pa.table({"data_source": pa.array(np.full(args.prompts, "bench")), "extra_info": extra}),
        dataset,
        row_group_size=65536,
    )
    t0 = time.perf_counter()
    summary = export(Path(args.workdir) / "stats", dataset, Path(args.workdir) / "export", row_batch_size=65536,
                     progress=not args.quiet)
    seconds = time.perf_counter() - t0
    return {"rows": summary["rows"], "rows_per_bucket": summary["rows_per_bucket"], "export_s": seconds,
            "peak_rss_mb": peak_rss_mb()}


def phase_baseline(args) -> dict:
    stats: dict[str, list] = {}
    n = 0
    t_total = 0.0
    for pid, step, acc, score in record_batches(args, limit=args.baseline_records):
        pid_l, step_l, acc_l, score_l = pid.to_pylist(), step.tolist(), acc.tolist(), score.tolist()
        t0 = time.perf_counter()
        for p, s, a, sc in zip(pid_l, step_l, acc_l, score_l):
            if sc != sc:
                raise ValueError("NaN score")
            row = stats.get(p)
            if row is None:
                row = stats[p] = [0, 0, 0.0, 1 << 31, -1]
            row[0] += 1
            row[1] += a == 1.0
            row[2] += sc
            if a == 1.0 and s < row[3]:
                row[3] = s
            if s > row[4]:
                row[4] = s
        t_total += time.perf_counter() - t0
        n += len(step_l)
    return {"records": n, "records_per_s": n / t_total, "peak_rss_mb": peak_rss_mb()}


PHASES = {
    "ingest": phase_ingest,
    "restore": phase_restore,
    "recorder": phase_recorder,
    "export": phase_export,
    "baseline": phase_baseline,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=10_000_000)
    p.add_argument("--prompts", type=int, default=1_000_000)
    p.add_argument("--batch-size", type=int, default=100_000, help="records per ingested batch (a record shard)")
    p.add_argument("--steps", type=int, default=1000, help="global steps the records are spread over")
    p.add_argument("--window-steps", type=int, default=50)
    p.add_argument("--recorder-records", type=int, default=2_000_000)
    p.add_argument("--baseline-records", type=int, default=1_000_000)
    p.add_argument("--phases", default="ingest,restore,recorder,export,baseline")
    p.add_argument("--workdir", default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)  # internal: run one phase here
    args = p.parse_args()

    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_passrate_") as tmp:
        workdir = args.workdir or tmp
        results = {}
        for phase in args.phases.split(","):
            cmd = [sys.executable, __file__, "--phase", phase, "--workdir", workdir]
            for name in ("records", "prompts", "batch_size", "steps", "window_steps", "recorder_records",
                         "baseline_records"):
                cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            cmd += ["--quiet"] if args.quiet else []
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            results[phase] = json.loads(out.strip().splitlines()[-1])

    print(f"\npass-rate tracker benchmark: {args.records:,} records over {args.prompts:,} prompts, "
          f"batches of {args.batch_size:,}, window {args.window_steps} steps")
    if "ingest" in results:
        r = results["ingest"]
        print(f"  ingest (validate + count): {r['records_per_s'] / 1e6:.2f} M records/s "
              f"({r['records']:,} records in {r['ingest_s']:.2f} s; generating them took {r['generate_s']:.2f} s), "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")
        print(f"  snapshot of {r['prompts_seen']:,} prompts: save {r['snapshot_save_s']:.2f} s, "
              f"{r['snapshot_mb']:.1f} MB, peak RSS with the save {r['peak_rss_with_save_mb']:.0f} MB")
    if "restore" in results:
        r = results["restore"]
        print(f"  restore (resumed run, snapshot -> tracker): {r['load_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    if "recorder" in results:
        r = results["recorder"]
        print(f"  recorder (validate + shard write + count): {r['records_per_s'] / 1e6:.2f} M records/s "
              f"on {r['records']:,} records, peak RSS {r['peak_rss_mb']:.0f} MB")
    if "export" in results:
        r = results["export"]
        print(f"  export of a {r['rows']:,}-row dataset: {r['export_s']:.2f} s "
              f"({r['rows_per_bucket']}), peak RSS {r['peak_rss_mb']:.0f} MB")
    if "baseline" in results:
        r = results["baseline"]
        line = f"  baseline (pure-Python dict, one record at a time): {r['records_per_s'] / 1e6:.2f} M records/s"
        if "ingest" in results:
            line += f"; tracker / baseline = {results['ingest']['records_per_s'] / r['records_per_s']:.1f}x"
        print(line + f", peak RSS {r['peak_rss_mb']:.0f} MB on {r['records']:,} records")
    if "ingest" in results:
        r = results["ingest"]
        ok = r["records_per_s"] >= 1e6 and r["peak_rss_mb"] < 300
        print(f"  goal (>= 1M records/s, < 300 MB): {'met' if ok else 'NOT met'}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
