"""Seconds per GRPO step and peak memory of the cpu_tiny run (recipes/rise_grpo_cpu_tiny.yaml) on this machine.

The run is the one CI's end-to-end test makes: a tiny Qwen2.5-VL built from the real Qwen2.5-VL processor files
(152k vocabulary), real MATH-Vision training rows converted by data_prep, images at most 128 visual tokens,
2 prompts x n=8 rollouts per step, the RISE reward. ``--steps`` steps, no checkpoint, no validation.

Reported:
* seconds per step (mean of steps 2.., step 1 includes warm-up) and its split into verl's phases (timing_s/*);
* memory of the whole process tree (driver, Ray, TransferQueue, trainer worker, hf rollout server, reward and
  agent-loop workers), sampled twice a second: proportional set size (PSS, shared pages split between processes,
  so the sum is what the run really occupies) and the largest single-process RSS with its role. The baseline is
  the same tree right after start-up (at the rollout's first weight sync, before step 1): the ratio peak / baseline
  says how much training itself adds.

Usage::

    python benchmarks/bench_cpu_step.py [--steps 4]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


class TreeMemory:
    """Samples PSS/RSS of a process and all its descendants; remembers the peaks and a baseline."""

    def __init__(self, baseline_marker: Path):
        self.baseline_marker = baseline_marker
        self.baseline_pss = None
        self.peak_pss = 0
        self.peak_rss = 0
        self.peak_rss_role = ""

    @staticmethod
    def _role(proc) -> str:
        try:
            cmd = " ".join(proc.cmdline())
        except Exception:  # noqa: BLE001 - the process may be gone
            return "?"
        m = re.search(r"ray::([A-Za-z0-9_]+)", cmd)
        return m.group(1) if m else Path(cmd.split(" ")[0]).name if cmd else "?"

    def __call__(self, pid: int) -> None:
        import psutil

        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        pss = 0
        for p in procs:
            try:
                info = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            pss += info.pss
            if info.rss > self.peak_rss:
                self.peak_rss, self.peak_rss_role = info.rss, self._role(p)
        self.peak_pss = max(self.peak_pss, pss)
        if self.baseline_pss is None and self.baseline_marker.exists():
            self.baseline_pss = pss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    repo = Path(__file__).resolve().parents[1]
    import pandas as pd

    from shared_data import MATHVISION, QWEN_PROCESSOR, require
    from verl_rise.recipes import RECIPES_DIR
    from verl_rise.tiny_model import build_tiny_model
    from verl_rise.verl_commands import run_main_ppo

    require(MATHVISION)
    require(QWEN_PROCESSOR)

    work = Path(tempfile.mkdtemp(prefix="vr-step-"))
    try:
        model = build_tiny_model(work / "tiny", processor_dir=str(QWEN_PROCESSOR))
        subprocess.run([sys.executable, "-m", "data_prep.mathvision", "--input", str(MATHVISION / "train.jsonl"),
                        "--output", str(work / "train_all.parquet"), "--no-progress"],
                       check=True, cwd=repo, capture_output=True)
        rows = pd.read_parquet(work / "train_all.parquet").head(2 * args.steps)
        rows.to_parquet(work / "train.parquet")
        trace = work / "step.trace.jsonl"
        memory = TreeMemory(baseline_marker=trace)
        run = run_main_ppo(
            RECIPES_DIR, "rise_grpo_cpu_tiny",
            [
                f"data.train_files={work / 'train.parquet'}",
                f"data.val_files={work / 'train.parquet'}",
                f"actor_rollout_ref.model.path={model}",
                f"trainer.default_local_dir={work / 'ckpt'}",
                f"trainer.total_training_steps={args.steps}",
                "trainer.save_freq=-1",
                "trainer.test_freq=-1",
            ],
            work,
            "step",
            timeout=3600,
            on_poll=memory,
        )
        if run.returncode != 0:
            print(run.log_tail(60))
            print(f"trainer failed (rc={run.returncode})")
            return 2
        steps = list(run.metrics.values())
        warm = steps[1:] or steps[:1]
        phases = sorted({k for d in warm for k in d if k.startswith("timing_s/")})
        mean = {k: sum(d.get(k, 0.0) for d in warm) / len(warm) for k in phases}
        gib = 1024**3
        print(f"cpu_tiny GRPO step (2 prompts x 8 rollouts, prompt <= 384 + response 32 tokens), "
              f"{len(steps)} steps, means over steps 2..{len(steps)}:")
        print(f"  seconds per step: {mean['timing_s/step']:.1f}  (step 1, with warm-up: "
              f"{steps[0]['timing_s/step']:.1f})")
        for k in phases:
            if k != "timing_s/step":
                print(f"    {k[len('timing_s/'):]:<16} {mean[k]:6.2f} s  {100 * mean[k] / mean['timing_s/step']:5.1f}%")
        print(f"  trainer wall time incl. start-up: {run.seconds:.0f} s")
        if memory.baseline_pss:
            print(f"  memory, whole process tree (PSS): baseline after start-up {memory.baseline_pss / gib:.2f} GiB, "
                  f"peak {memory.peak_pss / gib:.2f} GiB, ratio {memory.peak_pss / memory.baseline_pss:.2f}")
        else:
            print(f"  memory, whole process tree (PSS): peak {memory.peak_pss / gib:.2f} GiB (no baseline sample)")
        print(f"  largest process: {memory.peak_rss_role} peak RSS {memory.peak_rss / gib:.2f} GiB")
        return 0
    finally:
        if args.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
