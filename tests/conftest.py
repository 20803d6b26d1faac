"""Session-wide fixtures.

The CPU end-to-end GRPO run (:func:`e2e_grpo`) is session-scoped: Ray and the trainer start once per run (two runs:
train one step and checkpoint, then resume, train one more step and validate) and every e2e assertion in
tests/test_e2e_grpo_cpu.py reads what those runs left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.paths import MATHVISION, QWEN_PROCESSOR, REPO_ROOT, require


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """The real Qwen2.5-VL tokenizer (transformers builds it from vocab.json + merges.txt)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(require(QWEN_PROCESSOR)))


@dataclass
class E2EGRPO:
    """What the two CPU trainer runs of :func:`e2e_grpo` produced."""

    workdir: Path
    initial_policy: Path
    ckpt_dir: Path
    train_rows: list[dict]
    val_rows: list[dict]
    first: "object"  # tests.e2e_support.TrainerRun: 1 step from scratch, checkpoint saved
    resumed: "object"  # TrainerRun: resumes from that checkpoint, 1 more step, validation on testmini rows
    rollout_dir_first: Path
    rollout_dir_resumed: Path
    prep_seconds: float


def _convert_mathvision(jsonl: Path, out: Path, split: str) -> list[dict]:
    """Real MATH-Vision rows through the project's converter (python -m data_prep.mathvision)."""
    import pandas as pd

    subprocess.run(
        [sys.executable, "-m", "data_prep.mathvision", "--input", str(jsonl), "--output", str(out),
         "--split", split, "--no-progress"],
        check=True, cwd=REPO_ROOT, capture_output=True,
    )
    return pd.read_parquet(out).to_dict("records")


@pytest.fixture(scope="session")
def e2e_grpo():
    """Run verl's main_ppo twice with recipes/rise_grpo_cpu_tiny.yaml on this CPU (see tests/e2e_support.py)."""
    import pandas as pd

    from tests import e2e_support as e2e
    from verl_rise.tiny_model import build_tiny_model

    require(QWEN_PROCESSOR)
    require(MATHVISION)
    start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vr-e2e-"))  # short path: Ray's unix sockets live below it
    try:
        tiny = build_tiny_model(workdir / "tiny", processor_dir=str(QWEN_PROCESSOR), seed=0)
        train_all = _convert_mathvision(MATHVISION / "train.jsonl", workdir / "train_all.parquet", "train")
        val_all = _convert_mathvision(MATHVISION / "testmini.jsonl", workdir / "testmini_all.parquet", "testmini")
        # Two multiple-choice training prompts (one GRPO batch of 2 x n=8 rollouts) and four validation prompts.
        train_rows = e2e.choice_rows(train_all, 2)
        val_rows = val_all[:4]
        pd.DataFrame(train_rows).to_parquet(workdir / "train.parquet")
        pd.DataFrame(val_rows).to_parquet(workdir / "testmini.parquet")
        policy = e2e.prime_policy(tiny, train_rows, workdir / "policy")
        prep_seconds = time.monotonic() - start

        ckpt = workdir / "ckpt"
        common = [
            f"data.train_files={workdir / 'train.parquet'}",
            f"data.val_files={workdir / 'testmini.parquet'}",
            f"actor_rollout_ref.model.path={policy}",
            f"trainer.default_local_dir={ckpt}",
        ]
        rollout_first, rollout_resumed = workdir / "rollouts_first", workdir / "rollouts_resumed"
        first = e2e.run_main_ppo(
            "rise_grpo_cpu_tiny",
            common + ["trainer.total_training_steps=1", f"trainer.rollout_data_dir={rollout_first}"],
            workdir, "first",
        )
        if first.returncode != 0:
            pytest.fail(f"first CPU GRPO run failed (rc={first.returncode}):\n{first.log_tail()}")
        resumed = e2e.run_main_ppo(
            "rise_grpo_cpu_tiny",
            common + ["trainer.total_training_steps=2", f"trainer.rollout_data_dir={rollout_resumed}"],
            workdir, "resumed",
        )
        if resumed.returncode != 0:
            pytest.fail(f"resumed CPU GRPO run failed (rc={resumed.returncode}):\n{resumed.log_tail()}")
        yield E2EGRPO(workdir, policy, ckpt, train_rows, val_rows, first, resumed, rollout_first, rollout_resumed,
                      prep_seconds)
    finally:
        if os.environ.get("VERL_RISE_E2E_KEEP") == "1":
            print(f"e2e work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def rise_schedule():
    """The whole Metis-RISE schedule (``verl-rise run``) on real MATH-Vision input, on the CPU (tests/schedule_e2e.py)."""
    from tests.schedule_e2e import build_rise_schedule

    require(QWEN_PROCESSOR)
    require(MATHVISION)
    workdir = Path(tempfile.mkdtemp(prefix="vr-sched-"))  # short path: Ray's unix sockets live below it
    try:
        yield build_rise_schedule(workdir)
    finally:
        if os.environ.get("VERL_RISE_E2E_KEEP") == "1":
            print(f"schedule work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
