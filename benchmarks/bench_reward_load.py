"""The RISE reward under load: do right answers keep scoring 1 when it is called from many threads, from
short-lived thread pools, on a busy machine?

verl calls the reward from thread pools inside Ray actors (and users from per-batch executors), while the
trainer keeps the CPUs busy. Every right answer scored 0 there is a wrong gradient. This benchmark:

* starts CPU burners (busy-looping processes, one per core by default), bounded: each stops itself after
  ``--max-seconds`` and all are stopped when the run ends;
* scores a batch of right and wrong answers, half of them needing the symbolic verifier (radicals, pi,
  polynomials, with varied numbers so that the cache does not answer them), in three phases, each with a
  fresh verifier pool and cleared caches, so worker start-up under load is part of the run:
    1. ``threads``: one pool of ``--threads`` (default 8) long-lived threads;
    2. ``short-lived pools``: a new 4-thread pool per batch of 16, closed after it (its threads exit);
    3. ``one thread each``: every call from its own thread, which exits after it;
* prints per phase: right answers scored 0 (the goal: none) with their reasons, wrong answers scored 1,
  throughput and the worst and p99 latency of one call.

Exit status 1 when a right answer scored 0 or a wrong one 1, else 0.

Run:  python benchmarks/bench_reward_load.py [--n 320] [--threads 8] [--burners N] [--max-seconds 80]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reward_fns import compute_score  # noqa: E402
from reward_fns.accuracy import clear_cache  # noqa: E402
import reward_fns.verifier as verifier  # noqa: E402

THINK = "<think>I read the figure, set up the relation and simplify it step by step.</think>"


def _burn(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        for _ in range(10_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def build_items(n: int, seed: int) -> list[dict]:
    """``n`` (response, ground truth, label) items: half symbolic (verifier), half plain numbers; 3/4 right."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        k, m = rng.randint(2, 40), rng.choice([2, 3, 5, 6, 7, 10, 11, 13])
        right = i % 4 != 3
        kind = i % 8
        if kind in (0, 1):
            gold, box = f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}" if right else f"\\sqrt{{{k * k * m + 1}}}"
        elif kind == 2:
            gold, box = f"\\frac{{{k}\\pi}}{{{m}}}", f"{k}\\pi/{m}" if right else f"{k + 1}\\pi/{m}"
        elif kind == 3:
            gold = f"x^2+{2 * k}x+{k * k}"
            box = f"(x+{k})^2" if right else f"(x+{k + 1})^2"
        else:
            value = rng.randint(1, 10**6)
            gold, box = str(value), (f"{value:,}" if kind == 4 else f"x = {value}") if right else str(value + 1)
        response = f"{THINK}<answer>The answer is $\\boxed{{{box}}}$.</answer>"
        items.append({"response": response, "ground_truth": gold, "label": int(right)})
    return items


def _score(item: dict) -> tuple[dict, float, float, str]:
    start = time.perf_counter()
    r = compute_score("load", item["response"], item["ground_truth"])
    return item, r["acc"], time.perf_counter() - start, r["reason"]


def _fresh_pool() -> None:
    clear_cache()
    verifier._close_default_pool()
    verifier._pool = None


def phase_threads(items: list[dict], threads: int) -> list:
    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(_score, items))


def phase_short_pools(items: list[dict], threads: int) -> list:
    out = []
    for i in range(0, len(items), 16):
        with ThreadPoolExecutor(4) as ex:  # closed after each batch: its threads exit
            out.extend(ex.map(_score, items[i : i + 16]))
    return out


def phase_thread_each(items: list[dict], threads: int) -> list:
    out: list = []
    lock = threading.Lock()

    def run(item):
        result = _score(item)
        with lock:
            out.append(result)

    for i in range(0, len(items), threads):
        batch = [threading.Thread(target=run, args=(item,)) for item in items[i : i + threads]]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=320, help="items per phase (3/4 right, half symbolic)")
    ap.add_argument("--threads", type=int, default=8, help="threads of the long-lived pool")
    ap.add_argument("--burners", type=int, default=os.cpu_count() or 2, help="busy-looping processes")
    ap.add_argument("--max-seconds", type=float, default=80.0, help="burners stop themselves after this")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import logging

    logging.disable(logging.WARNING)
    phases = (("threads", phase_threads), ("short-lived pools", phase_short_pools), ("one thread each", phase_thread_each))
    stop_at = time.time() + args.max_seconds
    ctx = mp.get_context("spawn")
    burners = [ctx.Process(target=_burn, args=(stop_at,), daemon=True) for _ in range(args.burners)]
    for p in burners:
        p.start()
    print(f"{args.burners} CPU burners on {os.cpu_count()} cores; {args.n} items per phase; "
          f"REWARD_FNS_VERIFIER_WORKERS={os.environ.get('REWARD_FNS_VERIFIER_WORKERS', '2 (default)')}")
    failures = 0
    rows = []
    print(f"\n{'phase':<20}{'calls':>7}{'right->0':>10}{'wrong->1':>10}{'calls/s':>10}{'worst s':>10}{'p99 s':>9}  reasons of right->0",
          flush=True)
    try:
        for offset, (name, run) in enumerate(phases):
            items = build_items(args.n, args.seed + offset)
            _fresh_pool()
            start = time.perf_counter()
            results = run(items, args.threads)
            wall = time.perf_counter() - start
            latencies = [lat for _, _, lat, _ in results]
            right_zero = collections.Counter(reason for item, acc, _, reason in results if item["label"] == 1 and acc != 1.0)
            wrong_one = sum(1 for item, acc, _, _ in results if item["label"] == 0 and acc == 1.0)
            failures += sum(right_zero.values()) + wrong_one
            rows.append((name, len(results), sum(right_zero.values()), dict(right_zero), wrong_one, len(results) / wall,
                         max(latencies), statistics.quantiles(latencies, n=100, method="inclusive")[98]))
            _, n, rz, reasons, wo, rate, worst, p99 = rows[-1]
            print(f"{name:<20}{n:>7}{rz:>10}{wo:>10}{rate:>10.1f}{worst:>10.2f}{p99:>9.2f}  {reasons or '-'}", flush=True)
            if time.time() > stop_at:
                print(f"note: the burners stopped during phase {name!r} (--max-seconds {args.max_seconds})")
    finally:
        for p in burners:
            p.terminate()
        for p in burners:
            p.join(5)
        _fresh_pool()
    print(f"right answers scored 0: {sum(r[2] for r in rows)}; wrong answers scored 1: {sum(r[4] for r in rows)}; "
          f"worst latency {max(r[6] for r in rows):.2f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
