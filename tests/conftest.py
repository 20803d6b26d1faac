"""Shared fixtures. The CPU end-to-end GRPO run is session-scoped: Ray and the trainer start once (two runs: train
+ checkpoint, then resume + validate) and every e2e assertion reads what those runs left behind."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests import e2e_support as e2e

# TEMPORARY until data_prep and reward_fns.rise land on main (see tests/_tmp_*.py).
from tests import _tmp_mathvision_rows as tmp_rows

TMP_REWARD = Path(__file__).resolve().parent / "_tmp_reward.py"


@dataclass
class E2EGRPO:
    """What the two CPU trainer runs produced."""

    workdir: Path
    initial_policy: Path
    ckpt_dir: Path
    train_rows: list[dict]
    val_rows: list[dict]
    first: e2e.TrainerRun  # 1 step from scratch, checkpoint saved
    resumed: e2e.TrainerRun  # resumes from the checkpoint, 1 more step, validation on testmini rows
    rollout_dir_first: Path
    rollout_dir_resumed: Path
    prep_seconds: float


def _require_shared() -> None:
    if not e2e.PROCESSOR_DIR.is_dir() or not e2e.MATHVISION_DIR.is_dir():
        pytest.fail(f"the e2e test needs ../shared beside the repo ({e2e.SHARED}): processor files and MATH-Vision")


@pytest.fixture(scope="session")
def e2e_grpo() -> E2EGRPO:
    import time

    from verl_rise.tiny_model import build_tiny_model

    _require_shared()
    start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vr-e2e-"))  # short path: Ray's unix sockets live below it
    tiny = build_tiny_model(workdir / "tiny", processor_dir=str(e2e.PROCESSOR_DIR), seed=0)

    # TEMPORARY: real MATH-Vision rows in the brief's row contract, until data_prep lands.
    tmp_rows.write_rows(e2e.MATHVISION_DIR / "train.jsonl", workdir / "train_all.parquet", 12, "train")
    tmp_rows.write_rows(e2e.MATHVISION_DIR / "testmini.jsonl", workdir / "testmini_all.parquet", 4, "testmini")
    train_rows = e2e.choice_rows(pd.read_parquet(workdir / "train_all.parquet").to_dict("records"), 2)
    val_rows = pd.read_parquet(workdir / "testmini_all.parquet").to_dict("records")
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
        f"reward.custom_reward_function.path={TMP_REWARD}",  # TEMPORARY: pkg://reward_fns.rise once on main
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
    shutil.rmtree(workdir, ignore_errors=True)
