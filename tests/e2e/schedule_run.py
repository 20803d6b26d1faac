"""The CPU end-to-end run every e2e test reads: the whole Metis-RISE schedule (``verl-rise run``) on real input.

Input: MATH-Vision training problems and testmini rows from ../shared (through ``python -m data_prep.mathvision``),
the real Qwen2.5-VL processor files, the real MATH-V expert traces, and a tiny Qwen2.5-VL primed to answer in the
RISE format (:func:`verl_rise.demo.priming.prime_policy`, answers from tests/support/e2e_support.py).

Training prompts, in parquet (= dataloader) order, with roles (tests/e2e_support.py ``ROLES``): two the primed policy
gets right about half the time ("mixed": the GRPO groups verl trains on), one it always gets right ("solved") and one
it never does ("hard": MATH-V problem 98, free-form, with a real expert trace): the all-correct / all-wrong groups
DAPO dynamic sampling throws away and the pass-rate tracker must still record; and one longer than the profile's 384
prompt tokens ("overlong": verl's dataset drops it, the export reports it unseen). The mixed, solved and hard rows
each have an expert trace the SFT-set builder accepts, so whatever bucket the sweep puts them in, the SFT set covers
every hard prompt. Held-out: the first 4 testmini rows that fit.

The run config (:func:`run_config`) gives the RL stage, through ``overrides.rl``, what the tests need to look
inside: DAPO dynamic sampling on, 2 steps with a checkpoint after each, verl's rollout dumps
(``trainer.rollout_data_dir``) and the hf rollout's trace (one line per generate batch and weight sync), both under
``${trainer.default_local_dir}``, so each main_ppo run of the schedule (RL, sweep, eval) writes its own. The schedule
passes the RL overrides to its validation-only runs too (sweep, eval), where they change nothing else.

What runs (each a real ``python -m verl_rise.cli run`` process):

1. ``--until rl``, stopped with SIGTERM once RL step 1 is logged (verl's file logger) and its weights reached the
   rollout: the "first" run of the RL assertions;
2. the whole schedule: RL resumes from the step-1 checkpoint (verl resume_mode=auto) and trains step 2 (the
   "resumed" run), then merge, sweep (k=8), export, SFT set, SFT, merge, eval, report;
3. the same command again: every stage is skipped.

Sampling is seeded (the hf rollout's per-request generators, tiny model and priming seeds), so a rerun samples the
same responses. ``VERL_RISE_E2E_KEEP=1`` keeps the work directory; ``VERL_RISE_E2E_REUSE=<that directory>`` reads it
again instead of running (for working on the assertions).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from tests.support.paths import MATHVISION, QWEN_PROCESSOR, REPO_ROOT

CPU_TINY_PROMPT_TOKENS = 384  # rise_grpo_cpu_tiny: data.max_prompt_length
#: GRPO group size of the e2e RL stage (``actor_rollout_ref.rollout.n``, set in :data:`RL_OVERRIDES`; the profile's
#: is 8). Every RL step's cost is the 152k-vocabulary log-softmax over prompt + response tokens of each rollout, so
#: 4 halves it; a coin-flip prompt still gives a mixed group with probability 7/8, and DAPO redraws the others.
N_ROLLOUTS = 4
TRAIN_BATCH = 2  # rise_grpo_cpu_tiny: data.train_batch_size
SWEEP_K = 8  # responses per prompt in the sweep: a coin-flip prompt lands in "inconsistent" unless all 8 agree
HELD_OUT_ROWS = 4
#: MATH-Vision train problem (its ``id``) used as the hard prompt: free-form (answer 4), so the primed policy, which
#: answers option letters, never gets it right; the real expert-trace file has a trace for it that the builder keeps.
HARD_PROBLEM_WITH_EXPERT_TRACE = "98"
TRACE = "hf_trace.jsonl"  # under each main_ppo run's trainer.default_local_dir
#: pytest-timeout for the e2e tests (the first one also builds the session fixture, the whole schedule). The
#: project's default of 1500 s ran out on a 2-core machine shared with other work (load ~10).
E2E_TIMEOUT_S = 3600


def e2e_marks() -> list:
    """``pytestmark`` of every e2e test module: slow, the timeout above, and one pytest-xdist group, so that under
    ``-n auto --dist loadgroup`` (the README's test command) one worker runs every e2e test and the session fixture
    runs once, while the other workers take the unit and integration tests."""
    import pytest

    return [pytest.mark.slow, pytest.mark.timeout(E2E_TIMEOUT_S), pytest.mark.xdist_group("e2e")]


@dataclass
class CliRun:
    """One ``verl-rise run`` process."""

    argv: list[str]
    returncode: int
    seconds: float
    output: str


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class RiseSchedule:
    """What the real-input schedule left behind (see the module docstring)."""

    workdir: Path
    interrupted: CliRun
    full: CliRun
    rerun: CliRun
    prep_seconds: float

    # ---------------------------------------------------------------- inputs

    @property
    def config_path(self) -> Path:
        return self.workdir / "run.yaml"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def base_model(self) -> Path:
        """The primed tiny policy RL starts from."""
        return self.workdir / "base_model"

    @property
    def train_rows(self) -> list[dict]:
        """train.parquet, in order: roles :data:`tests.support.e2e_support.ROLES`."""
        import pandas as pd

        return pd.read_parquet(self.workdir / "train.parquet").to_dict("records")

    @property
    def held_out_rows(self) -> list[dict]:
        import pandas as pd

        return pd.read_parquet(self.workdir / "testmini.parquet").to_dict("records")

    @property
    def roles(self) -> dict[str, str]:
        """prompt_id -> "mixed" | "solved" | "hard" | "overlong"."""
        return json.loads((self.workdir / "roles.json").read_text())

    def stage(self, name: str) -> Path:
        return self.run_dir / name

    # ---------------------------------------------------------------- RL stage

    @property
    def ckpt_dir(self) -> Path:
        return self.stage("rl") / "ckpt"

    def rl_attempt(self, number: int):
        """The manifest record of RL attempt ``number`` (1: interrupted, 2: resumed)."""
        from verl_rise.schedule.manifest import read_manifest

        return read_manifest(self.stage("rl")).steps["main_ppo"].attempts[number - 1]

    def metrics(self, attempt: int) -> dict[int, dict]:
        """verl's file-logger metrics of RL attempt ``attempt``: {step: merged data}."""
        from verl_rise.file_logger import read_step_metrics

        return read_step_metrics(self.stage("rl") / "metrics" / f"attempt-{attempt}.jsonl", missing_ok=True)

    def step_metrics(self, attempt: int, step: int) -> dict:
        return self.metrics(attempt).get(step, {})

    def trace(self, attempt: int) -> list[dict]:
        """hf rollout trace events of RL attempt ``attempt`` (both attempts append to one file; split by the
        attempt's start and end in the stage manifest)."""
        a = self.rl_attempt(attempt)
        end = a.finished if a.finished is not None else float("inf")
        return [e for e in _jsonl(self.ckpt_dir / TRACE) if a.started <= e["time"] <= end]

    def rollout_dump(self, step: int) -> list[dict]:
        """verl's ``trainer.rollout_data_dir`` dump of training step ``step`` (the trained batch)."""
        path = self.ckpt_dir / "rollouts" / f"{step}.jsonl"
        assert path.is_file(), f"verl wrote no rollout dump {path}"
        return _jsonl(path)

    # ---------------------------------------------------------------- sweep

    @property
    def sweep_trace(self) -> list[dict]:
        return _jsonl(self.stage("sweep") / "ckpt" / TRACE)

    # ---------------------------------------------------------------- persistence (VERL_RISE_E2E_REUSE)

    def save(self) -> None:
        doc = {k: v for k, v in asdict(self).items() if k != "workdir"}
        (self.workdir / "fixture.json").write_text(json.dumps(doc))

    @classmethod
    def load(cls, workdir: Path) -> "RiseSchedule":
        doc = json.loads((workdir / "fixture.json").read_text())
        runs = {k: CliRun(**doc[k]) for k in ("interrupted", "full", "rerun")}
        return cls(workdir, prep_seconds=doc["prep_seconds"], **runs)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _cli(args: list[str], cwd: Path, stop_when=None, timeout: float = 1800) -> CliRun:
    """Run ``python -m verl_rise.cli`` ``args``; SIGTERM it once ``stop_when()`` is true (polled every 0.5 s)."""
    argv = [sys.executable, "-m", "verl_rise.cli", *args]
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT)
        stopped = False
        while proc.poll() is None:
            if time.monotonic() - start > timeout:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(argv, timeout)
            if stop_when is not None and not stopped and stop_when():
                proc.send_signal(signal.SIGTERM)
                stopped = True
            time.sleep(0.5)
        out.seek(0)
        return CliRun(argv, proc.returncode, time.monotonic() - start, out.read())


def _convert(jsonl: Path, out: Path, split: str) -> list[dict]:
    import pandas as pd

    from data_prep import mathvision

    code = mathvision.main(["--input", str(jsonl), "--output", str(out), "--split", split, "--no-progress"])
    assert code == 0, f"data_prep.mathvision exited {code} on {jsonl}"
    return pd.read_parquet(out).to_dict("records")


def rows_with_usable_traces(rows: list[dict]) -> set[str]:
    """Prompt ids of rows with at least one MATH-V expert trace the SFT-set builder's gate accepts."""
    from verl_rise.sft_data.expert_file import MATHVISION_KEY, record_prompt_id
    from verl_rise.sft_data.rewrite import to_rise_format

    by_id = {r["extra_info"]["prompt_id"]: r for r in rows}
    usable = set()
    for line in (MATHVISION / "expert_traces.jsonl").read_text().splitlines():
        record = json.loads(line)
        try:
            pid = record_prompt_id(record, MATHVISION_KEY, MATHVISION)
        except ValueError:
            continue
        row = by_id.get(pid)
        if row is None:
            continue
        options = list(row["extra_info"]["options"]) if row["extra_info"]["options"] is not None else []
        if to_rise_format(record["response"], row["reward_model"]["ground_truth"], options,
                          model_answer=record.get("model_answer")).ok:
            usable.add(pid)
    return usable


def pick_rows(train_all: list[dict], train_parquet: Path, processor) -> tuple[list[dict], list[str]]:
    """The training rows and their roles (module docstring): rows with usable expert traces first, the hard
    problem first among them, so every role but "overlong" gets a row the SFT-set builder can cover."""
    from tests.support.e2e_support import pick_training_rows
    from tests.support.sft_export_fixture import mathvision_prompt_ids

    usable = rows_with_usable_traces(train_all)
    hard_pid = mathvision_prompt_ids(train_parquet)[HARD_PROBLEM_WITH_EXPERT_TRACE]
    pid = lambda r: r["extra_info"]["prompt_id"]  # noqa: E731
    ordered = sorted(train_all, key=lambda r: (pid(r) not in usable, pid(r) != hard_pid))
    rows, roles = pick_training_rows(ordered, processor, max_prompt_length=CPU_TINY_PROMPT_TOKENS)
    assert all(pid(r) in usable for r, role in zip(rows, roles) if role != "overlong")
    assert pid(rows[roles.index("hard")]) == hard_pid
    return rows, roles


#: What the RL stage gets beyond the profile (module docstring). ``${trainer.default_local_dir}`` is each main_ppo
#: run's own checkpoint directory, so the sweep and eval runs (which get these overrides too) trace elsewhere.
RL_OVERRIDES = [
    # 2 GRPO steps with a checkpoint after each (the first is where the fixture stops the run).
    "trainer.total_training_steps=2", "trainer.save_freq=1", "trainer.test_freq=2",
    f"actor_rollout_ref.rollout.n={N_ROLLOUTS}",
    "algorithm.filter_groups.enable=true",
    "trainer.rollout_data_dir=${trainer.default_local_dir}/rollouts",
    f"+actor_rollout_ref.rollout.engine_kwargs.hf.trace_path=${{trainer.default_local_dir}}/{TRACE}",
]


def run_config(workdir: Path, model: Path) -> dict:
    return {
        "run_dir": str(workdir / "run"),
        "model": str(model),
        "data": {"train": str(workdir / "train.parquet"),
                 "held_out": {"mathvision_testmini": str(workdir / "testmini.parquet")}},
        "expert": {"files": [str(MATHVISION / "expert_traces.jsonl")], "key": "mathvision",
                   "image_root": str(MATHVISION)},
        "profiles": {"rl": "rise_grpo_cpu_tiny", "sft": "rise_sft_cpu_tiny"},
        "recipes_dir": str(REPO_ROOT / "recipes"),
        "sweep": {"k": SWEEP_K},
        "launch": {"sft_nproc_per_node": 1},
        "overrides": {"rl": list(RL_OVERRIDES)},
    }


def prepare(workdir: Path) -> None:
    """Real input, roles and the primed policy in ``workdir`` (module docstring), and the run config."""
    import pandas as pd
    from transformers import AutoProcessor

    from tests.support.e2e_support import primed_examples, priming_answers, prompt_tokens
    from verl_rise.demo.priming import prime_policy
    from verl_rise.tiny_model import build_tiny_model

    tiny = build_tiny_model(workdir / "tiny", processor_dir=str(QWEN_PROCESSOR), seed=0)
    processor = AutoProcessor.from_pretrained(str(tiny))
    train_all = _convert(MATHVISION / "train.jsonl", workdir / "train_all.parquet", "train")
    test_all = _convert(MATHVISION / "testmini.jsonl", workdir / "testmini_all.parquet", "testmini")
    train_rows, roles = pick_rows(train_all, workdir / "train_all.parquet", processor)
    held_out = [r for r in test_all[:16] if prompt_tokens(processor, r) <= CPU_TINY_PROMPT_TOKENS][:HELD_OUT_ROWS]
    pd.DataFrame(train_rows).to_parquet(workdir / "train.parquet")
    pd.DataFrame(held_out).to_parquet(workdir / "testmini.parquet")
    (workdir / "roles.json").write_text(json.dumps(
        {r["extra_info"]["prompt_id"]: role for r, role in zip(train_rows, roles)}))
    primed_rows, answers = priming_answers(train_rows, roles)
    prime_policy(tiny, primed_examples(primed_rows, answers), workdir / "base_model", seed=0)
    (workdir / "run.yaml").write_text(yaml.safe_dump(run_config(workdir, workdir / "base_model"), sort_keys=False))


def build_rise_schedule(workdir: Path) -> RiseSchedule:
    """Prepare the real input in ``workdir``, run the schedule as the module docstring says, return what it left."""
    start = time.monotonic()
    prepare(workdir)
    prep_seconds = time.monotonic() - start
    config_path = workdir / "run.yaml"
    rl = workdir / "run" / "rl"

    def step1_logged_and_synced() -> bool:
        from verl_rise.file_logger import read_step_metrics

        # verl logs a step after saving its checkpoint; the weights sync tagged 1 carries step 1's update to the
        # rollout. Step 2 then starts and is cut short (the tracker discards its records on resume).
        try:  # the files are being written: a half-written last line is read again at the next poll
            if "critic/score/mean" not in read_step_metrics(rl / "metrics" / "attempt-1.jsonl", missing_ok=True).get(1, {}):
                return False
            return any(e["event"] == "weights" and e["global_steps"] == 1 for e in _jsonl(rl / "ckpt" / TRACE))
        except ValueError:
            return False

    interrupted = _cli(["run", str(config_path), "--until", "rl"], workdir, stop_when=step1_logged_and_synced)
    full = _cli(["run", str(config_path)], workdir)
    rerun = _cli(["run", str(config_path)], workdir) if full.returncode == 0 else CliRun([], -1, 0.0, "")
    result = RiseSchedule(workdir, interrupted, full, rerun, prep_seconds)
    result.save()
    return result
