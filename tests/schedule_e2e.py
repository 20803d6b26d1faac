"""The session fixture :func:`rise_schedule`: the whole Metis-RISE schedule (``verl-rise run``) on real input, on the CPU.

Input: MATH-Vision training problems and testmini rows from ../shared (through ``python -m data_prep.mathvision``),
the real Qwen2.5-VL processor files, the real MATH-V expert traces, and a tiny Qwen2.5-VL primed to answer in the
RISE format (tests/e2e_support.py ``prime_policy``: a random option letter, the right one half of the time, so the
sweep finds inconsistent prompts as well as hard ones).

Training prompts: 4 multiple-choice and 2 free-form problems that each have at least one expert trace the SFT-set
builder's gate accepts, and whose prompt (image included) fits the cpu_tiny profile's 384 tokens (verl would drop a
longer one, and a dropped prompt gets no pass rate). The primed policy answers letters, so the free-form prompts are
hard (pass rate 0) and get expert trajectories; the multiple-choice ones are mostly inconsistent (self-distillation).
Held-out: the first 8 testmini rows that fit.

What runs (each a real ``python -m verl_rise.cli run`` process):

1. ``--until rl``, stopped with SIGTERM as soon as the RL stage has saved its step-1 checkpoint (of 2);
2. the whole schedule: RL resumes from that checkpoint (verl resume_mode=auto), then merge, sweep (k=4), export,
   SFT set, SFT, merge, eval (base and RL accuracy from the RL run's own validation, the SFT model's own run), report;
3. the same command again: every stage is skipped.

Everything is kept in ``RiseSchedule`` for the assertions (tests/test_schedule_e2e.py) and for later e2e tests
that read the stages' outputs. ``VERL_RISE_E2E_KEEP=1`` keeps the work directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.paths import MATHVISION, QWEN_PROCESSOR, REPO_ROOT

CPU_TINY_PROMPT_TOKENS = 384


@dataclass
class CliRun:
    """One ``verl-rise run`` process."""

    argv: list[str]
    returncode: int
    seconds: float
    output: str


@dataclass
class RiseSchedule:
    """What the real-input schedule left behind (see the module docstring)."""

    workdir: Path
    config_path: Path
    run_dir: Path
    base_model: Path
    train_rows: list[dict]
    held_out_rows: list[dict]
    interrupted: CliRun
    full: CliRun
    rerun: CliRun
    prep_seconds: float
    runs: list[CliRun] = field(default_factory=list)

    def stage(self, name: str) -> Path:
        return self.run_dir / name


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


def prompt_tokens(processor, row: dict) -> int:
    """Prompt length of an RL row as verl's length filter counts it (chat template + image tokens)."""
    from tests.e2e_support import CPU_TINY_MM_KWARGS
    from verl_rise.demo.chat import rl_row_messages as row_messages

    messages, images = row_messages(row)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return len(processor(text=[text], images=images, **CPU_TINY_MM_KWARGS)["input_ids"][0])


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


def pick_rows(rows: list[dict], processor, usable: set[str], choice: int, free: int) -> list[dict]:
    """The first ``choice`` multiple-choice and ``free`` free-form rows with usable traces that fit the profile."""
    picked, counts = [], {"choice": 0, "free_form": 0}
    want = {"choice": choice, "free_form": free}
    for row in rows:
        kind = row["extra_info"]["answer_type"]
        if counts[kind] >= want[kind] or row["extra_info"]["prompt_id"] not in usable:
            continue
        if kind == "choice" and row["reward_model"]["ground_truth"] not in "ABCDE":
            continue
        if prompt_tokens(processor, row) > CPU_TINY_PROMPT_TOKENS:
            continue
        picked.append(row)
        counts[kind] += 1
    assert counts == want, f"only {counts} suitable MATH-Vision rows"
    return picked


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
        "sweep": {"k": 4},
        "launch": {"sft_nproc_per_node": 1},
        # 2 GRPO steps with a checkpoint after each (the first is where the fixture stops the run).
        "overrides": {"rl": ["trainer.total_training_steps=2", "trainer.save_freq=1", "trainer.test_freq=2"]},
    }


def build_rise_schedule(workdir: Path) -> RiseSchedule:
    """Prepare the real input in ``workdir``, run the schedule as the module docstring says, return what it left."""
    import pandas as pd
    from transformers import AutoProcessor

    from tests.e2e_support import prime_policy
    from verl_rise.tiny_model import build_tiny_model

    start = time.monotonic()
    processor = AutoProcessor.from_pretrained(str(QWEN_PROCESSOR))
    train_all = _convert(MATHVISION / "train.jsonl", workdir / "train_all.parquet", "train")
    test_all = _convert(MATHVISION / "testmini.jsonl", workdir / "testmini_all.parquet", "testmini")
    train_rows = pick_rows(train_all, processor, rows_with_usable_traces(train_all), choice=4, free=2)
    held_out = [r for r in test_all[:16] if prompt_tokens(processor, r) <= CPU_TINY_PROMPT_TOKENS][:8]
    pd.DataFrame(train_rows).to_parquet(workdir / "train.parquet")
    pd.DataFrame(held_out).to_parquet(workdir / "testmini.parquet")
    tiny = build_tiny_model(workdir / "tiny", processor_dir=str(QWEN_PROCESSOR), seed=0)
    choice_rows = [r for r in train_rows if r["extra_info"]["answer_type"] == "choice"]
    base = prime_policy(tiny, choice_rows, workdir / "base_model")
    config_path = workdir / "run.yaml"
    config_path.write_text(yaml.safe_dump(run_config(workdir, base), sort_keys=False))
    prep_seconds = time.monotonic() - start

    tracker = workdir / "run" / "rl" / "ckpt" / "latest_checkpointed_iteration.txt"

    def step1_saved() -> bool:
        try:
            return tracker.read_text().strip() == "1"
        except OSError:
            return False

    interrupted = _cli(["run", str(config_path), "--until", "rl"], workdir, stop_when=step1_saved)
    full = _cli(["run", str(config_path)], workdir)
    rerun = _cli(["run", str(config_path)], workdir) if full.returncode == 0 else CliRun([], -1, 0.0, "")
    return RiseSchedule(workdir, config_path, workdir / "run", base, train_rows, held_out, interrupted, full, rerun,
                        prep_seconds, [interrupted, full, rerun])
