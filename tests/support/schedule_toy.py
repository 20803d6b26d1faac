"""A three-stage toy plan of real, cheap commands for the runner-mechanics tests (tests/test_schedule_runner.py).

Stages: ``prep`` (copies the input file ``<root>/input.txt`` to ``prep/out.txt``), ``train`` (a resumable
"trainer": counts to ``<root>/steps.txt`` steps, one checkpoint file per step, sleeping ``<root>/sleep.txt`` seconds
per step, so a kill leaves a checkpoint to resume from), ``final`` (two steps: ``summarize`` writes ``final/summary
.txt`` from the other two stages' outputs, then ``seal`` copies it). The commands are ``python tests/support/schedule_toy.py
<mode> ...`` processes, started by the real runner with the real manifests.

``python -m tests.support.schedule_toy run ROOT [--from S] [--until S]`` runs the plan in a separate process (the kill tests
need one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from verl_rise.schedule.plan import Stage, Step

HERE = Path(__file__).resolve()


def _cmd(*args: str) -> list[str]:
    return [sys.executable, str(HERE), *args]


def toy_plan(root: Path) -> list[Stage]:
    """The toy plan rooted at ``root`` (see the module docstring)."""
    prep, train, final = root / "prep", root / "train", root / "final"
    return [
        Stage("prep", prep, [Step("copy", _cmd("copy", str(root / "input.txt"), str(prep / "out.txt")),
                                  outputs=[prep / "out.txt"], inputs=[root / "input.txt"])], "copy the input"),
        Stage("train", train, [Step("count", _cmd("count", str(train / "ckpt"), str(root / "steps.txt"),
                                                  str(root / "sleep.txt"), str(prep / "out.txt")),
                                    outputs=[train / "ckpt"], inputs=[root / "steps.txt"], upstream=["prep"],
                                    resumable=True, env={"TOY_ATTEMPT": "{attempt}"})], "resumable counter"),
        Stage("final", final, [
            Step("summarize", _cmd("summarize", str(prep / "out.txt"), str(train / "ckpt"), str(final / "summary.txt")),
                 outputs=[final / "summary.txt"], upstream=["prep", "train"]),
            Step("seal", _cmd("copy", str(final / "summary.txt"), str(final / "sealed.txt")),
                 outputs=[final / "sealed.txt"]),
        ], "two dependent steps"),
    ]


def write_inputs(root: Path, text: str = "hello", steps: int = 3, sleep: float = 0.0) -> None:
    """Create the toy plan's input files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "input.txt").write_text(text)
    (root / "steps.txt").write_text(str(steps))
    (root / "sleep.txt").write_text(str(sleep))


def _copy(src: str, dst: str) -> int:
    data = Path(src).read_text()
    if data.startswith("FAIL"):
        print(f"refusing input {data!r}", file=sys.stderr)
        return 3
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    Path(dst).write_text(data)
    return 0


def _count(ckpt: str, steps_file: str, sleep_file: str, upstream: str) -> int:
    ckpt_dir = Path(ckpt)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    steps = int(Path(steps_file).read_text())
    sleep = float(Path(sleep_file).read_text())
    done = sorted(int(p.stem.split("_")[1]) for p in ckpt_dir.glob("step_*.txt"))
    start = done[-1] if done else 0
    with open(ckpt_dir / "starts.log", "a") as f:
        f.write(f"attempt={os.environ.get('TOY_ATTEMPT')} start={start} pid={os.getpid()}\n")
    for i in range(start + 1, steps + 1):
        time.sleep(sleep)
        (ckpt_dir / f"step_{i}.txt").write_text(Path(upstream).read_text())
        print(f"step {i}/{steps}", flush=True)
    return 0


def _summarize(prep_out: str, ckpt: str, out: str) -> int:
    n = len(list(Path(ckpt).glob("step_*.txt")))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(f"{Path(prep_out).read_text()} x {n}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mode, args = argv[0], argv[1:]
    if mode == "copy":
        return _copy(*args)
    if mode == "count":
        return _count(*args)
    if mode == "summarize":
        return _summarize(*args)
    if mode == "run":
        from verl_rise.schedule.runner import RunInterrupted, RunOptions, StageFailed, run_plan

        parser = argparse.ArgumentParser()
        parser.add_argument("root", type=Path)
        parser.add_argument("--from", dest="from_stage")
        parser.add_argument("--until", dest="until_stage")
        ns = parser.parse_args(args)
        try:
            run_plan(ns.root, toy_plan(ns.root), RunOptions(ns.from_stage, ns.until_stage, poll_s=0.1,
                                                             stop_grace_s=5))
        except (StageFailed, RunInterrupted) as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    if str(HERE.parents[2]) not in sys.path:
        sys.path.insert(0, str(HERE.parents[2]))
    sys.exit(main())
