"""Throughput and memory of data_prep: rows/s and peak RSS for 1k and 10k generated rows.

Each size runs in its own child process (peak RSS is a per-process high-water mark), generating problems with
:mod:`data_prep.generator` and streaming them through the shared conversion pipeline into parquet. A child that
only imports the same modules gives the baseline RSS. Streaming means the 10k run should need about the same
memory as the 1k run: the printed ratio ``peak RSS 10k / 1k`` is the check (1.0 = flat). When ../shared holds
MATH-Vision, its 400 real training rows are converted as well.

Usage::

    python benchmarks/bench_data_prep.py [--sizes 1000 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MV = REPO / ".." / "shared" / "data" / "mathvision"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _child(kind: str, n: int, seed: int, out_dir: str) -> None:
    from data_prep.pipeline import ConvertConfig, SourceRow, convert

    start = time.perf_counter()
    if kind == "baseline":
        import data_prep.generator  # noqa: F401  - same imports as the measured runs, no work
        import data_prep.mathvision  # noqa: F401

        rows = 0
    elif kind == "generate":
        from data_prep.generator import iter_problems, to_problem

        config = ConvertConfig(output=Path(out_dir) / f"gen_{n}.parquet", progress=False)
        stats = convert((SourceRow("gen", i, p) for i, p in iter_problems(n, seed)), to_problem, config)
        rows = stats.written
    else:  # mathvision
        from data_prep.mathvision import problem_from_record
        from data_prep.records import iter_jsonl

        config = ConvertConfig(output=Path(out_dir) / "mv.parquet", progress=False)
        stats = convert(iter_jsonl(MV / "train.jsonl"), lambda r: problem_from_record(r, MV), config)
        rows = stats.written
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in Path(out_dir).glob("*.parquet"))
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mib": _peak_rss_mib(), "parquet_bytes": size}))


def _run(kind: str, n: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        res = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(n), str(seed), tmp],
            capture_output=True, text=True, env=env, check=True,
        )
        return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, seed, out = args.child
        _child(kind, int(n), int(seed), out)
        return
    base = _run("baseline", 0, args.seed)
    print(f"baseline (imports only): peak RSS {base['peak_rss_mib']:.0f} MiB")
    results = {}
    for n in args.sizes:
        r = _run("generate", n, args.seed)
        results[n] = r
        print(
            f"generated {r['rows']:>6} rows: {r['rows'] / r['seconds']:7.1f} rows/s ({r['seconds']:.1f} s), "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB (+{r['peak_rss_mib'] - base['peak_rss_mib']:.0f} over baseline), "
            f"parquet {r['parquet_bytes'] / 2**20:.1f} MiB"
        )
    if len(args.sizes) >= 2:
        small, large = min(args.sizes), max(args.sizes)
        a, b = results[small], results[large]
        print(
            f"ratio {large}/{small}: peak RSS x{b['peak_rss_mib'] / a['peak_rss_mib']:.2f} "
            f"(growth over baseline x{(b['peak_rss_mib'] - base['peak_rss_mib']) / max(1e-9, a['peak_rss_mib'] - base['peak_rss_mib']):.2f}), "
            f"rows/s x{(b['rows'] / b['seconds']) / (a['rows'] / a['seconds']):.2f}, rows x{large / small:.0f}"
        )
    if (MV / "train.jsonl").exists():
        r = _run("mathvision", 0, args.seed)
        print(
            f"MATH-Vision train ({r['rows']} real rows, JPEG decode + resize): {r['rows'] / r['seconds']:.1f} rows/s, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
