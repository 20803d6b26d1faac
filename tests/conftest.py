"""Session-wide fixtures.

The CPU end-to-end GRPO run (:func:`e2e_grpo`) is session-scoped: Ray and the trainer start once per run (two runs:
train one step and checkpoint, then resume, train one more step and validate) and every e2e assertion in
tests/test_e2e_grpo_cpu.py and tests/test_passrate_e2e.py reads what those runs left behind. The runs use the
recipe as users do: pass-rate tracking on (rise_grpo's default) and DAPO dynamic sampling switched on.
:func:`e2e_sweep_export` chains one more main_ppo start off it: the post-RL pass-rate sweep on the merged final
checkpoint, then the export. The SFT stage (:func:`e2e_sft`, tests/test_sft_e2e.py) is chained off that export: the
SFT set, verl's SFT trainer from the merged RL checkpoint, the merger again; it adds no RL run.
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

from tests.support.paths import MATHVISION, QWEN_PROCESSOR, REPO_ROOT, require


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
    train_rows: list[dict]  # train.parquet, in order: roles tests.e2e_support.ROLES
    roles: dict[str, str]  # prompt_id -> "mixed" | "solved" | "hard" | "overlong"
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


#: MATH-Vision train problem (its ``id``) used as e2e_grpo's hard prompt: free-form (answer 4), so the primed policy,
#: which answers option letters, never gets it right; the real expert-trace file has a trace for it that the SFT-set
#: builder keeps.
HARD_PROBLEM_WITH_EXPERT_TRACE = "98"


@pytest.fixture(scope="session")
def e2e_grpo():
    """Run verl's main_ppo twice with recipes/rise_grpo_cpu_tiny.yaml on this CPU (see tests/e2e_support.py)."""
    import pandas as pd

    from transformers import AutoProcessor

    from tests import e2e_support as e2e
    from tests.sft_export_fixture import mathvision_prompt_ids
    from verl_rise.tiny_model import build_tiny_model

    require(QWEN_PROCESSOR)
    require(MATHVISION)
    start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vr-e2e-"))  # short path: Ray's unix sockets live below it
    try:
        tiny = build_tiny_model(workdir / "tiny", processor_dir=str(QWEN_PROCESSOR), seed=0)
        train_all = _convert_mathvision(MATHVISION / "train.jsonl", workdir / "train_all.parquet", "train")
        val_all = _convert_mathvision(MATHVISION / "testmini.jsonl", workdir / "testmini_all.parquet", "testmini")
        # Five training prompts (ROLES): two the primed policy gets right half the time (the GRPO batch of 2 x n=8
        # rollouts it trains on), one it always gets right and one it never does (the groups DAPO throws away and
        # the pass-rate tracker must still record), one longer than data.max_prompt_length (verl drops it). Four
        # validation prompts.
        processor = AutoProcessor.from_pretrained(str(tiny))
        # The hard row is tried first among the free-form rows: a problem the real expert-trace file covers, so
        # the SFT chain (e2e_sft) gets a verified expert trajectory for it.
        hard_pid = mathvision_prompt_ids(workdir / "train_all.parquet")[HARD_PROBLEM_WITH_EXPERT_TRACE]
        hard_first = sorted(train_all, key=lambda r: r["extra_info"]["prompt_id"] != hard_pid)
        train_rows, roles = e2e.pick_training_rows(hard_first, processor, max_prompt_length=384)
        val_rows = val_all[:4]
        pd.DataFrame(train_rows).to_parquet(workdir / "train.parquet")
        pd.DataFrame(val_rows).to_parquet(workdir / "testmini.parquet")
        primed_rows, answers = e2e.priming_answers(train_rows, roles)
        policy = e2e.prime_policy(tiny, primed_rows, workdir / "policy", answers=answers)
        prep_seconds = time.monotonic() - start

        ckpt = workdir / "ckpt"
        common = [
            "algorithm.filter_groups.enable=true",
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
        yield E2EGRPO(workdir, policy, ckpt, train_rows,
                      {r["extra_info"]["prompt_id"]: role for r, role in zip(train_rows, roles)}, val_rows, first,
                      resumed, rollout_first, rollout_resumed, prep_seconds)
    finally:
        if os.environ.get("VERL_RISE_E2E_KEEP") == "1":
            print(f"e2e work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class E2ESweepExport:
    """The post-RL sweep and export on the final checkpoint of :func:`e2e_grpo`."""

    step: int  # the checkpoint merged (latest_checkpointed_iteration.txt)
    merged: Path  # python -m verl.model_merger merge output (HF format)
    sweep_dir: Path  # python -m verl_rise.passrate sweep --out
    sweep: dict  # sweep_dir/sweep.json
    trace: list[dict]  # hf rollout trace of the sweep's main_ppo run
    split_dir: Path  # python -m verl_rise.passrate export --out
    summary: dict  # split_dir/summary.json
    k: int
    seconds: dict  # merge / sweep / export wall times


#: Responses per prompt in the e2e sweep: the primed mixed prompts are right about half the time, so a prompt
#: lands in "inconsistent" unless all 8 agree (about 1 in 128 each).
SWEEP_K = 8


def _run_cli(args: list[str], cwd: Path, what: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (rc={proc.returncode}): {' '.join(args)}\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def _latest_step(ckpt_dir: Path) -> int:
    return int((ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip())


@pytest.fixture(scope="session")
def e2e_sweep_export(e2e_grpo):
    """Merge the e2e run's final checkpoint with verl's model merger, sweep the training rows with
    ``python -m verl_rise.passrate sweep`` (one more main_ppo start, validation only) and export the split."""
    import json

    from tests.e2e_support import RECIPES_DIR, read_jsonl

    work = e2e_grpo.workdir
    step = _latest_step(e2e_grpo.ckpt_dir)
    merged, sweep_dir, split_dir = work / "merged", work / "sweep", work / "split"
    trace_path = work / "sweep.trace.jsonl"
    seconds = {}
    start = time.monotonic()
    _run_cli(["-m", "verl.model_merger", "merge", "--backend", "fsdp",
              "--local_dir", str(e2e_grpo.ckpt_dir / f"global_step_{step}" / "actor"), "--target_dir", str(merged)],
             work, "verl model merger", timeout=600)
    seconds["merge"] = time.monotonic() - start
    start = time.monotonic()
    _run_cli(["-m", "verl_rise.passrate", "sweep", "--model", str(merged), "--data", str(work / "train.parquet"),
              "--k", str(SWEEP_K), "--out", str(sweep_dir), "--recipe", "rise_grpo_cpu_tiny",
              "--config-path", str(RECIPES_DIR), "--quiet", "--timeout", "900",
              f"+actor_rollout_ref.rollout.engine_kwargs.hf.trace_path={trace_path}"],
             work, "pass-rate sweep", timeout=1000)
    seconds["sweep"] = time.monotonic() - start
    start = time.monotonic()
    _run_cli(["-m", "verl_rise.passrate", "export", "--stats", str(sweep_dir / "stats"),
              "--dataset", str(work / "train.parquet"), "--out", str(split_dir), "--quiet"],
             work, "pass-rate export", timeout=300)
    seconds["export"] = time.monotonic() - start
    (work / "sweep_export_seconds.json").write_text(json.dumps(seconds))  # figures for docs (VERL_RISE_E2E_KEEP=1)
    yield E2ESweepExport(step, merged, sweep_dir, json.loads((sweep_dir / "sweep.json").read_text()),
                         read_jsonl(trace_path), split_dir, json.loads((split_dir / "summary.json").read_text()),
                         SWEEP_K, seconds)


@dataclass
class E2ESFT:
    """What the SFT chain of :func:`e2e_sft` produced (tests/sft_chain.py runs each step)."""

    workdir: Path
    rl_step_dir: Path  # <RL ckpt>/global_step_N/actor: verl's FSDP checkpoint the chain starts from
    rl_hf: Path  # that checkpoint merged to HF format by verl's model merger (e2e_sweep_export.merged)
    sweep_rows: list[dict]  # the rows whose pass rates the sweep measured (e2e_grpo.train_rows)
    export_dir: Path  # python -m verl_rise.passrate export output (e2e_sweep_export.split_dir)
    export_summary: dict
    sft_dir: Path  # python -m verl_rise.sft_data build output
    build_stats: dict  # its stats.json
    sft_ckpt: Path  # the SFT trainer's trainer.default_local_dir
    sft_step_dir: Path  # <sft_ckpt>/global_step_N
    sft_hf: Path  # the SFT checkpoint merged to HF format
    sft_metrics: dict  # verl's file-logger metrics of the SFT run, by step
    commands: dict  # step name -> tests.sft_chain.Command


@pytest.fixture(scope="session")
def e2e_sft(e2e_grpo, e2e_sweep_export):
    """Metis-RISE stage 2 on this CPU from the e2e run's sweep export: SFT set -> SFT with images (torchrun,
    recipes/rise_sft_cpu_tiny.yaml via examples/rise_sft_cpu_tiny.sh) from the merged RL checkpoint -> merge."""
    import json

    from tests import sft_chain as chain

    work = e2e_grpo.workdir / "sft_chain"
    work.mkdir()
    commands = {}

    def check(name: str, command) -> None:
        commands[name] = command
        if command.returncode != 0:
            pytest.fail(f"SFT chain step {name!r} failed (rc={command.returncode}):\n{command.tail()}")

    # 1. The SFT set: self-distilled responses of the sweep's inconsistent prompts, real expert traces for the hard
    #    one (e2e_grpo's hard row is a problem the real trace file covers: HARD_PROBLEM_WITH_EXPERT_TRACE).
    sft_dir = work / "sft"
    check("build", chain.run([sys.executable, "-m", "verl_rise.sft_data", "build",
                              "--export-dir", e2e_sweep_export.split_dir, "--out", sft_dir,
                              "--expert-file", MATHVISION / "expert_traces.jsonl", "--expert-key", "mathvision",
                              "--tokenizer", QWEN_PROCESSOR, "--no-progress"], work / "build.log"))

    # 2. verl's SFT trainer on this CPU through the documented launcher, from the merged RL checkpoint.
    sft_ckpt, metrics = work / "sft_ckpt", work / "sft.metrics.jsonl"
    env = chain.child_env({"TRAIN_FILES": str(sft_dir / "sft.parquet"), "MODEL_PATH": str(e2e_sweep_export.merged),
                           "CKPT_DIR": str(sft_ckpt), "PYTHON": sys.executable,
                           "RISE_RECIPES_DIR": str(REPO_ROOT / "recipes"), "VERL_FILE_LOGGER_PATH": str(metrics)})
    check("sft", chain.run(["bash", REPO_ROOT / "examples" / "rise_sft_cpu_tiny.sh", "trainer.logger=[console,file]"],
                           work / "sft.log", timeout=900, env=env))

    # 3. The SFT checkpoint merged to HF format.
    sft_step = sft_ckpt / f"global_step_{_latest_step(sft_ckpt)}"
    sft_hf = work / "sft_hf"
    check("merge_sft", chain.merge_fsdp_checkpoint(sft_step, sft_hf, work / "merge_sft.log"))

    result = E2ESFT(
        workdir=work, rl_step_dir=e2e_grpo.ckpt_dir / f"global_step_{e2e_sweep_export.step}" / "actor",
        rl_hf=e2e_sweep_export.merged, sweep_rows=e2e_grpo.train_rows, export_dir=e2e_sweep_export.split_dir,
        export_summary=e2e_sweep_export.summary, sft_dir=sft_dir,
        build_stats=json.loads((sft_dir / "stats.json").read_text()), sft_ckpt=sft_ckpt, sft_step_dir=sft_step,
        sft_hf=sft_hf, sft_metrics=chain.read_metrics(metrics), commands=commands,
    )
    cov = result.build_stats["coverage"]
    print(f"\nSFT chain: export rows per bucket {result.export_summary['rows_per_bucket']}; "
          f"SFT rows by source {result.build_stats['rows_by_source']}; hard prompts covered "
          f"{cov['hard']['covered']}/{cov['hard']['prompts']}, inconsistent {cov['inconsistent']['covered']}/"
          f"{cov['inconsistent']['prompts']}; seconds: " + ", ".join(f"{k} {c.seconds:.0f}" for k, c in commands.items()))
    yield result


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
