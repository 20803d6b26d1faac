"""Helpers for the CPU end-to-end SFT chain (tests/test_sft_e2e.py, fixture ``e2e_sft`` in tests/conftest.py).

The chain starts from what the ``e2e_grpo`` and ``e2e_sweep_export`` fixtures left behind (the tiny Qwen2.5-VL's GRPO
checkpoint on real MATH-Vision rows, merged to HF format by verl's model merger, and the pass-rate export of its
post-RL sweep) and runs Metis-RISE stage 2 with the project's own commands, each in a subprocess exactly as a user
would type it:

1. ``python -m verl_rise.sft_data build`` (self-distillation + the real expert traces);
2. ``examples/rise_sft_cpu_tiny.sh`` (torchrun -m verl.trainer.sft_trainer, recipe rise_sft_cpu_tiny);
3. ``python -m verl.model_merger merge`` on the SFT checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tests.support.paths import REPO_ROOT

@dataclass
class Command:
    """One subprocess of the chain and what it printed."""

    args: list[str]
    returncode: int
    seconds: float
    log: Path

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def child_env(extra: dict | None = None) -> dict:
    """The environment of a chain subprocess: this checkout first on PYTHONPATH, no inherited platform choice."""
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["HYDRA_FULL_ERROR"] = "1"
    env.update(extra or {})
    return env


def run(args: Sequence[str], log: Path, *, timeout: float = 600, env: dict | None = None, cwd: Path | None = None
        ) -> Command:
    """Run ``args`` with stdout+stderr to ``log``; the whole process tree is killed after ``timeout`` seconds.

    Raises:
        subprocess.TimeoutExpired: the command ran longer than ``timeout``.
    """
    from verl_rise.processes import kill_process_tree

    start = time.monotonic()
    with open(log, "w") as out:
        out.write(" ".join(map(str, args)) + "\n")
        out.flush()
        proc = subprocess.Popen(list(map(str, args)), stdout=out, stderr=subprocess.STDOUT,
                                env=env or child_env(), cwd=cwd or REPO_ROOT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process_tree(proc)
            raise
    return Command(list(map(str, args)), proc.returncode, time.monotonic() - start, log)


def merge_fsdp_checkpoint(local_dir: Path, target_dir: Path, log: Path) -> Command:
    """verl's model merger: ``python -m verl.model_merger merge --backend fsdp --local_dir D --target_dir T``."""
    return run([sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
                "--local_dir", local_dir, "--target_dir", target_dir], log)


def read_metrics(path: Path) -> dict[int, dict]:
    """verl's file-logger JSONL (``VERL_FILE_LOGGER_PATH``) -> {step: merged metrics}."""
    merged: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                merged.setdefault(item["step"], {}).update(item["data"])
    return merged
