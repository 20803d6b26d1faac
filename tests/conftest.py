"""Session-wide fixtures.

The CPU end-to-end GRPO run (:func:`e2e_grpo`) is session-scoped: Ray and the trainer start once per run (two runs:
train one step and checkpoint, then resume, train one more step and validate) and every e2e assertion in
tests/test_e2e_grpo_cpu.py reads what those runs left behind. The SFT stage (:func:`e2e_sft`) is chained off it:
it starts from that RL checkpoint and adds no RL run (tests/test_sft_e2e.py).
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

    @property
    def train_all(self) -> Path:
        """All 400 MATH-Vision train rows through data_prep (the RL run trains on two of them)."""
        return self.workdir / "train_all.parquet"


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


@dataclass
class E2ESFT:
    """What the SFT chain of :func:`e2e_sft` produced (tests/sft_chain.py runs each step)."""

    workdir: Path
    rl_step_dir: Path  # <RL ckpt>/global_step_N/actor: verl's FSDP checkpoint the chain starts from
    rl_hf: Path  # that checkpoint merged to HF format by verl's model merger
    sweep_rows: list[dict]  # the rows whose pass rates were measured
    interim_export: bool  # True: pass rates from tests.sft_chain.sample_validation_dumps (see its docstring)
    export_dir: Path  # python -m verl_rise.passrate export output
    export_summary: dict
    sft_dir: Path  # python -m verl_rise.sft_data build output
    build_stats: dict  # its stats.json
    sft_ckpt: Path  # the SFT trainer's trainer.default_local_dir
    sft_step_dir: Path  # <sft_ckpt>/global_step_N
    sft_hf: Path  # the SFT checkpoint merged to HF format
    sft_metrics: dict  # verl's file-logger metrics of the SFT run, by step
    commands: dict  # step name -> tests.sft_chain.Command


def _latest_step(ckpt_dir: Path) -> int:
    return int((ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip())


@pytest.fixture(scope="session")
def e2e_sft(e2e_grpo):
    """Metis-RISE stage 2 on this CPU from the e2e_grpo checkpoint: merge -> pass-rate export -> SFT set -> SFT with
    images (torchrun, recipes/rise_sft_cpu_tiny.yaml via examples/rise_sft_cpu_tiny.sh) -> merge."""
    import json

    import pandas as pd

    from tests import sft_chain as chain
    from tests.sft_export_fixture import train_rows

    work = e2e_grpo.workdir / "sft_chain"
    work.mkdir()
    commands = {}

    def check(name: str, command) -> None:
        commands[name] = command
        if command.returncode != 0:
            pytest.fail(f"SFT chain step {name!r} failed (rc={command.returncode}):\n{command.tail()}")

    # 1. The RL checkpoint (latest step of the e2e_grpo runs) merged to HF format: the SFT initialisation.
    rl_step = e2e_grpo.ckpt_dir / f"global_step_{_latest_step(e2e_grpo.ckpt_dir)}" / "actor"
    rl_hf = work / "rl_hf"
    check("merge_rl", chain.merge_fsdp_checkpoint(rl_step, rl_hf, work / "merge_rl.log"))

    # 2. Pass rates of real rows under that checkpoint -> export (INTERIM sampler: tests/sft_chain.py docstring).
    rows = chain.sweep_rows(train_rows(e2e_grpo.train_all), e2e_grpo.train_rows)
    sweep_parquet = work / "sweep.parquet"
    pd.DataFrame(rows).to_parquet(sweep_parquet)
    start = time.monotonic()
    chain.sample_validation_dumps(rl_hf, rows, work / "sweep_dumps", k=6, max_new_tokens=24)
    sample_seconds = time.monotonic() - start
    stats_dir, export_dir = work / "sweep_stats", work / "export"
    check("ingest", chain.run([sys.executable, "-m", "verl_rise.passrate", "ingest-dumps", work / "sweep_dumps",
                               "--dir", stats_dir, "--quiet"], work / "ingest.log"))
    check("export", chain.run([sys.executable, "-m", "verl_rise.passrate", "export", "--stats", stats_dir,
                               "--dataset", sweep_parquet, "--out", export_dir, "--quiet"], work / "export.log"))

    # 3. The SFT set: self-distilled responses of inconsistent prompts, real expert traces for hard ones.
    sft_dir = work / "sft"
    check("build", chain.run([sys.executable, "-m", "verl_rise.sft_data", "build", "--export-dir", export_dir,
                              "--out", sft_dir, "--expert-file", MATHVISION / "expert_traces.jsonl",
                              "--expert-key", "mathvision", "--tokenizer", QWEN_PROCESSOR, "--no-progress"],
                             work / "build.log"))

    # 4. verl's SFT trainer on this CPU through the documented launcher.
    sft_ckpt, metrics = work / "sft_ckpt", work / "sft.metrics.jsonl"
    env = chain.child_env({"TRAIN_FILES": str(sft_dir / "sft.parquet"), "MODEL_PATH": str(rl_hf),
                           "CKPT_DIR": str(sft_ckpt), "PYTHON": sys.executable,
                           "RISE_RECIPES_DIR": str(REPO_ROOT / "recipes"), "VERL_FILE_LOGGER_PATH": str(metrics)})
    check("sft", chain.run(["bash", REPO_ROOT / "examples" / "rise_sft_cpu_tiny.sh", "trainer.logger=[console,file]"],
                           work / "sft.log", timeout=900, env=env))

    # 5. The SFT checkpoint merged to HF format.
    sft_step = sft_ckpt / f"global_step_{_latest_step(sft_ckpt)}"
    sft_hf = work / "sft_hf"
    check("merge_sft", chain.merge_fsdp_checkpoint(sft_step, sft_hf, work / "merge_sft.log"))

    result = E2ESFT(
        workdir=work, rl_step_dir=rl_step, rl_hf=rl_hf, sweep_rows=rows, interim_export=True,
        export_dir=export_dir, export_summary=json.loads((export_dir / "summary.json").read_text()),
        sft_dir=sft_dir, build_stats=json.loads((sft_dir / "stats.json").read_text()),
        sft_ckpt=sft_ckpt, sft_step_dir=sft_step, sft_hf=sft_hf, sft_metrics=chain.read_metrics(metrics),
        commands=commands,
    )
    cov = result.build_stats["coverage"]
    print(f"\nSFT chain: export rows per bucket {result.export_summary['rows_per_bucket']}; "
          f"SFT rows by source {result.build_stats['rows_by_source']}; hard prompts covered "
          f"{cov['hard']['covered']}/{cov['hard']['prompts']}, inconsistent {cov['inconsistent']['covered']}/"
          f"{cov['inconsistent']['prompts']}; seconds: sample {sample_seconds:.0f}, "
          + ", ".join(f"{k} {c.seconds:.0f}" for k, c in commands.items()))
    yield result
