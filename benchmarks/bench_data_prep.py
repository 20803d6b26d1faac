"""Throughput and memory of data_prep, serial vs the image pool: rows/s and peak RSS at 1k and 10k rows.

Two inputs:

* real MATH-Vision rows (../shared/data/mathvision/train.jsonl, JPEGs read from the dataset root, full decode,
  checks and resize as the converter does them): the 400 rows are repeated to reach each size, every copy with a
  question suffix so its prompt id differs (else copies would be rejected as duplicates without decoding);
* generated problems (:mod:`data_prep.generator`): drawing the pictures is part of the measured time.

Each (input, size, mode) runs in its own child process (peak RSS is a per-process high-water mark); the serial
run (``workers=0``) and the pool run (``--workers``, default: the CPU count) of a size follow each other, and the
printed ratio pool/serial is the figure to compare across machines: the machine may be busy with other work.
``peak RSS`` is the main process's high-water mark; ``all`` is the sampled peak PSS of main + worker processes.
``CPU ms/row`` splits the CPU time per row into the main process's and the workers' (figures a busy machine
changes less than rows/s); the ``idle estimate`` is the rate those CPU times allow on this many otherwise idle
cores (main process as one serial stage, the rest spread over the cores): a model, printed beside the measurement.
The clock starts after the imports, including the pandas import that pyarrow makes on its first conversion
(printed on its own line: a fixed cost per process, not per row), and stops when the parquet file is in place.
Streaming means 10k rows need about the memory of 1k rows: the ``RSS 10k/1k`` ratio is the check (1.0 = flat).

Usage::

    python benchmarks/bench_data_prep.py [--sizes 1000 10000] [--workers 2] [--inputs mathvision generated]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MV = REPO / ".." / "shared" / "data" / "mathvision"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class _TreeRss:
    """Samples the memory (PSS) and CPU time of this process and its descendants (the pool workers) every 0.2 s."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self.cpu: dict[int, float] = {}  # pid -> user + system seconds, as last sampled (workers: to ~0.2 s)
        self.own_cpu = 0.0
        cpu = self._me.cpu_times()
        self._cpu0 = cpu.user + cpu.system
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            total = 0
            for proc in [self._me, *self._me.children(recursive=True)]:
                try:
                    with proc.oneshot():
                        # PSS: forked workers share the parent's pages; RSS would count them once per process.
                        total += proc.memory_full_info().pss
                        cpu = proc.cpu_times()
                    self.cpu[proc.pid] = cpu.user + cpu.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self.own_cpu = time.thread_time()  # the sampler's own CPU, not charged to the conversion

    def stop(self) -> tuple[float, float, float]:
        """(peak PSS of the process tree in MiB, CPU seconds since the start of this process, of the workers)."""
        self._stop.set()
        self._thread.join()
        cpu = self._me.cpu_times()
        main_cpu = cpu.user + cpu.system - self._cpu0 - self.own_cpu
        self.cpu.pop(self._me.pid, None)
        return self.peak / 2**20, main_cpu, sum(self.cpu.values())


def _mathvision_input(n: int, path: Path) -> None:
    lines = (MV / "train.jsonl").read_text(encoding="utf-8").splitlines()
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            record = json.loads(lines[i % len(lines)])
            copy = i // len(lines)
            if copy:
                record["question"] += f" (copy {copy})"
            fh.write(json.dumps(record) + "\n")


def _pyarrow_lazy_imports() -> float:
    """Seconds pyarrow spends on its first Python-to-Arrow conversion, which imports pandas when installed (~0.4 s).

    A one-time start-up cost of the process, like the other imports, so it is paid before the clock and printed on
    its own: inside the clock it would count as 0.4 ms/row at 1k rows and nothing at 10k.
    """
    import pyarrow as pa

    start = time.perf_counter()
    pa.array([0])
    return time.perf_counter() - start


def _child(kind: str, n: int, workers: int, seed: int, out_dir: str) -> None:
    from data_prep.pipeline import ConvertConfig, SourceRow, convert

    config = ConvertConfig(output=Path(out_dir) / "out.parquet", progress=False, workers=workers)
    lazy_import_s = _pyarrow_lazy_imports()
    if kind == "baseline":
        import data_prep.generator  # noqa: F401  - same imports as the measured runs, no work
        import data_prep.mathvision  # noqa: F401

        print(json.dumps({"peak_rss_mib": _peak_rss_mib(), "lazy_import_s": lazy_import_s}))
        return
    if kind == "mathvision":
        from data_prep.mathvision import problem_from_record
        from data_prep.records import iter_jsonl

        src = Path(out_dir) / "in.jsonl"
        _mathvision_input(n, src)  # before the clock: the converter's input file
        rows, to_problem = iter_jsonl(src), (lambda r: problem_from_record(r, MV))
    else:
        from data_prep.generator import iter_problems, to_problem

        rows = (SourceRow("gen", i, p) for i, p in iter_problems(n, seed))
    tree = _TreeRss()
    start = time.perf_counter()
    stats = convert(rows, to_problem, config)
    seconds = time.perf_counter() - start
    tree_rss, main_cpu, worker_cpu = tree.stop()
    print(json.dumps({
        "read": stats.read, "written": stats.written, "seconds": seconds, "peak_rss_mib": _peak_rss_mib(),
        "tree_rss_mib": tree_rss, "main_cpu": main_cpu, "worker_cpu": worker_cpu,
        "parquet_bytes": config.output.stat().st_size,
    }))


def _run(kind: str, n: int, workers: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        res = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(n), str(workers), str(seed), tmp],
            capture_output=True, text=True, env=env,
        )
        if res.returncode:
            raise SystemExit(f"child {kind} {n} {workers} failed:\n{res.stderr}")
        return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    from data_prep.image_pool import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--workers", type=int, default=max(1, default_workers()), help="pool size of the pool runs")
    parser.add_argument("--inputs", nargs="+", choices=("mathvision", "generated"), default=["mathvision", "generated"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, workers, seed, out = args.child
        _child(kind, int(n), int(workers), int(seed), out)
        return
    inputs = [k for k in args.inputs if k != "mathvision" or (MV / "train.jsonl").exists()]
    cores = len(os.sched_getaffinity(0))
    base = _run("baseline", 0, 0, args.seed)
    print(f"CPUs usable: {cores}, load average {os.getloadavg()[0]:.1f}; "
          f"baseline (imports only): peak RSS {base['peak_rss_mib']:.0f} MiB; one-time start-up outside the clock: "
          f"pyarrow's lazy pandas import {base['lazy_import_s']:.2f} s")
    for kind in inputs:
        label = "MATH-Vision (real rows, repeated)" if kind == "mathvision" else "generated (drawing included)"
        results = {}
        for n in args.sizes:
            for mode, workers in (("serial", 0), (f"pool({args.workers})", args.workers)):
                r = _run(kind, n, workers, args.seed)
                assert r["read"] == r["written"] == n, r
                r["rate"] = r["written"] / r["seconds"]
                main_ms, worker_ms = 1000 * r["main_cpu"] / n, 1000 * r["worker_cpu"] / n
                # What the CPU times allow on `cores` otherwise idle cores: the main process is one serial stage,
                # the workers share what the main process leaves. A model from measured figures, not a measurement.
                r["idle_rate"] = 1000 / max(main_ms, (main_ms + worker_ms) / max(1, min(cores, workers + 1)))
                results[(n, workers)] = r
                print(
                    f"{label:34} {n:>6} rows {mode:8}: {r['rate']:7.1f} rows/s ({r['seconds']:5.1f} s; "
                    f"CPU ms/row main {main_ms:.2f} + workers {worker_ms:.2f}; "
                    f"idle {cores}-core estimate {r['idle_rate']:5.0f} rows/s), "
                    f"peak RSS {r['peak_rss_mib']:4.0f} MiB (all processes, PSS: {r['tree_rss_mib']:4.0f} MiB)"
                )
            s, p = results[(n, 0)], results[(n, args.workers)]
            print(f"{'':34} {n:>6} rows  pool/serial: rows/s x{p['rate'] / s['rate']:.2f} "
                  f"(idle estimate x{p['idle_rate'] / s['idle_rate']:.2f}), "
                  f"parquet bytes equal: {s['parquet_bytes'] == p['parquet_bytes']}")
        if len(args.sizes) >= 2:
            small, large = min(args.sizes), max(args.sizes)
            for workers in (0, args.workers):
                a, b = results[(small, workers)], results[(large, workers)]
                print(f"{'':34} RSS {large}/{small} rows, {'serial' if not workers else 'pool'}: "
                      f"main x{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}, "
                      f"all processes x{b['tree_rss_mib'] / a['tree_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
