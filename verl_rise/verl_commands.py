"""Command lines of the verl entry points verl-rise runs: ``main_ppo`` (training and validation-only),
``sft_trainer`` under torchrun, and the model merger; and a logged run of one ``main_ppo``.

One builder per command, shared by the command-line tools (``python -m verl_rise.passrate sweep``,
:mod:`verl_rise.validation_run`), the schedule (:mod:`verl_rise.schedule.plan`), the benchmarks and the tests, so a
change in how we call verl is made once. The builders only build argv lists (no verl import): the schedule's
``--dry-run`` prints them for Slurm or Ray users to run by hand.

Hydra override values are quoted as Hydra's override grammar needs (:func:`hydra_value`, :func:`hydra_list`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from verl_rise.file_logger import read_step_metrics
from verl_rise.processes import kill_process_tree, log_tail

#: The reward verl-rise trains and evaluates with (reward_fns/rise.py): ``(path, name)`` of verl's custom reward.
RISE_REWARD = ("pkg://reward_fns.rise", "compute_score")
#: The same reward with the prompt id echoed into verl's validation dumps (verl_rise.passrate.sweep_reward:
#: identical scores), for the pass-rate sweep and sampled evaluation.
SWEEP_REWARD = ("pkg://verl_rise.passrate.sweep_reward", "compute_score")
#: The benchmark reward (strict and lenient extraction by each benchmark's own rules, dispatching on data_source;
#: verl_rise.evaluation). The one place its module path is named.
BENCHMARK_REWARD = ("pkg://verl_rise.evaluation.reward", "compute_score")
#: The benchmark reward with each row's benchmark and TSV index echoed into verl's validation dumps
#: (verl_rise.schedule.benchmark_reward), for the eval stage's benchmark runs.
EVAL_BENCHMARK_REWARD = ("pkg://verl_rise.schedule.benchmark_reward", "compute_score")

#: Generation settings of the Metis-RISE model card for its evaluation: images between 128 and 16384 visual tokens
#: (x 28 x 28 pixels), up to 8192 new tokens (the system prompt is in the data, verl_rise.prompts).
MODEL_CARD_MIN_PIXELS = 128 * 28 * 28
MODEL_CARD_MAX_PIXELS = 16384 * 28 * 28
MODEL_CARD_MAX_NEW_TOKENS = 8192

#: The main_ppo overrides that make a run validation-only over every row of its val files: no training step
#: (trainer_base.py:481-490), no checkpoint resume (the model comes from ``actor_rollout_ref.model.path`` only,
#: trainer_base.py:851-876), no ``val_max_samples`` cap from the profile.
VAL_ONLY_OVERRIDES = (
    "data.val_max_samples=-1",
    "trainer.val_only=true",
    "trainer.val_before_train=true",
    "trainer.resume_mode=disable",
)

_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")


def _quoted(value: str, quote: str) -> str:
    # Hydra's quoted strings: a backslash escapes only a quote or a run of backslashes ending at a quote or at the
    # closing quote; any other backslash is literal (hydra/grammar/OverrideLexer.g4, ESC / QUOTED_VALUE).
    out = re.sub(r"(\\+)(?=" + re.escape(quote) + r"|$)", lambda m: m.group(1) * 2, value)
    return quote + out.replace(quote, "\\" + quote) + quote


def hydra_value(value: str) -> str:
    """A string as a Hydra override value: bare when safe, else single-quoted with Hydra's escapes.

    Example:
        >>> hydra_value("/data/train.parquet"), hydra_value("it's")
        ('/data/train.parquet', "'it\\\\'s'")
    """
    if value and set(value) <= _PLAIN:
        return value
    return _quoted(value, "'")


def hydra_list(values: Sequence[str]) -> str:
    """A list of strings as a Hydra override value: ``["a","b"]`` (double-quoted with Hydra's escapes)."""
    return "[" + ",".join(_quoted(v, '"') for v in values) + "]"


def override_key(override: str) -> str:
    """The dotted key of a Hydra override (``+a.b=1`` -> ``a.b``)."""
    return override.lstrip("+~").split("=", 1)[0]


def main_ppo(python: str, recipes_dir: str | os.PathLike, profile: str) -> list[str]:
    """``python -m verl.trainer.main_ppo --config-path RECIPES --config-name PROFILE`` (overrides go after it)."""
    return [python, "-m", "verl.trainer.main_ppo", "--config-path", str(recipes_dir), "--config-name", profile]


def sampling_overrides(n: int, temperature: float, top_p: float = 1.0, top_k: Optional[int] = None) -> list[str]:
    """``actor_rollout_ref.rollout.val_kwargs`` for ``n`` responses per prompt (sampled when temperature > 0).

    The v1 agent loop reads only temperature / top_p / top_k (agent_loop_tq.py:72-76) and ``n``
    (agent_loop_tq.py:115).
    """
    kw = "actor_rollout_ref.rollout.val_kwargs"
    out = [f"{kw}.n={n}", f"{kw}.do_sample={'true' if temperature > 0 else 'false'}",
           f"{kw}.temperature={temperature}", f"{kw}.top_p={top_p}"]
    if top_k is not None:
        out.append(f"{kw}.top_k={top_k}")
    return out


def reward_overrides(reward: tuple[str, str]) -> list[str]:
    """``reward.custom_reward_function.{path,name}`` for a ``(path, name)`` pair such as :data:`SWEEP_REWARD`."""
    return [f"reward.custom_reward_function.path={reward[0]}", f"reward.custom_reward_function.name={reward[1]}"]


def generation_overrides(min_pixels: int, max_pixels: int, max_new_tokens: int, max_prompt_length: int) -> list[str]:
    """The response budget and image pixel range of a (validation) run.

    ``data.mm_processor_kwargs`` reaches the dataset's length filter, the rollout and the processor (both pixel
    bounds are given: transformers' Qwen2-VL processor honours call-time bounds only as a pair). vLLM's
    ``max_model_len`` (and the batched-token budget, which must cover it without chunked prefill) is sized to
    ``max_prompt_length + max_new_tokens``.
    """
    total = max_prompt_length + max_new_tokens
    return [
        f"++data.mm_processor_kwargs.min_pixels={min_pixels}",
        f"++data.mm_processor_kwargs.max_pixels={max_pixels}",
        f"data.max_prompt_length={max_prompt_length}",
        f"data.max_response_length={max_new_tokens}",
        f"actor_rollout_ref.rollout.max_model_len={total}",
        f"actor_rollout_ref.rollout.max_num_batched_tokens={total}",
    ]


def validation_only_overrides(model: str, val_files: Sequence[str], train_file: str, out_dir: Path,
                              loggers: str = "[console,file]") -> list[str]:
    """What makes a ``main_ppo`` run a validation-only run of ``model`` on ``val_files``, writing under ``out_dir``.

    ``data.train_files`` is needed too: verl builds the training dataset even in a validation-only run. verl
    writes its dumps (``<global step>.jsonl``, step 0) to ``out_dir/dumps`` and its checkpoint directory (unused)
    to ``out_dir/ckpt``.
    """
    return [
        f"data.train_files={hydra_value(train_file)}",
        f"data.val_files={hydra_list(list(val_files))}",
        f"actor_rollout_ref.model.path={hydra_value(model)}",
        f"trainer.default_local_dir={hydra_value(str(out_dir / 'ckpt'))}",
        f"trainer.validation_data_dir={hydra_value(str(out_dir / 'dumps'))}",
        f"trainer.logger={loggers}",
        *VAL_ONLY_OVERRIDES,
    ]


def sft_trainer(python: str, recipes_dir: str | os.PathLike, profile: str, nproc_per_node: int,
                rendezvous: Sequence = ("--standalone", "--nnodes=1"), prefix: Sequence = ()) -> list:
    """verl's SFT trainer under torchrun (overrides go after it).

    Args:
        rendezvous: torchrun's node and rendezvous arguments; the default is one node. For several nodes:
            ``--nnodes=N --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT --rdzv_id=ID`` (the schedule's plan builds
            them; items may be deferred values).
        prefix: a launcher in front of torchrun, e.g. ``srun --nodes=N --ntasks-per-node=1``.
    """
    return [*prefix, python, "-m", "torch.distributed.run", *rendezvous, f"--nproc_per_node={nproc_per_node}",
            "-m", "verl.trainer.sft_trainer", "--config-path", str(recipes_dir), "--config-name", profile]


def model_merger(python: str, local_dir, target_dir: str | os.PathLike) -> list:
    """verl's FSDP checkpoint -> Hugging Face model directory (``python -m verl.model_merger merge``).

    ``local_dir`` may be a deferred value of the schedule's plan (it is placed in the list as it is).
    """
    return [python, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", local_dir,
            "--target_dir", str(target_dir)]


@dataclass
class TrainerRun:
    """One ``main_ppo`` process run by :func:`run_main_ppo` and what it left behind.

    Attributes:
        returncode, seconds: exit status and wall time.
        log_path: the trainer's stdout + stderr.
        metrics: ``{step: merged metrics}`` from verl's file logger.
        trace: hf rollout trace events (``engine_kwargs.hf.trace_path``), one dict per line.
    """

    returncode: int
    seconds: float
    log_path: Path
    metrics: dict[int, dict] = field(default_factory=dict)
    trace: list[dict] = field(default_factory=list)

    def log_tail(self, n: int = 80) -> str:
        return log_tail(self.log_path, n)

    def step_metrics(self, step: int) -> dict:
        return self.metrics.get(step, {})


def run_main_ppo(recipes_dir: str | os.PathLike, profile: str, overrides: Sequence[str], workdir: Path, tag: str,
                 timeout: float = 900, extra_env: Optional[dict] = None,
                 on_poll: Optional[Callable[[int], None]] = None, poll_seconds: float = 0.5) -> TrainerRun:
    """Run ``main_ppo`` with a recipe and collect its file-logger metrics and its hf rollout trace.

    verl's file logger writes to ``workdir/<tag>.metrics.jsonl``, the hf rollout engine to
    ``workdir/<tag>.trace.jsonl``, the trainer's output to ``workdir/<tag>.log``. ``on_poll(pid)`` is called every
    ``poll_seconds`` while the trainer runs (benchmarks sample memory with it).

    Raises:
        subprocess.TimeoutExpired: the trainer ran longer than ``timeout`` seconds (its process tree is killed).
    """
    import json

    metrics_path, trace_path, log_path = (workdir / f"{tag}.{s}" for s in ("metrics.jsonl", "trace.jsonl", "log"))
    env = {**os.environ, "VERL_FILE_LOGGER_PATH": str(metrics_path), "HYDRA_FULL_ERROR": "1", **(extra_env or {})}
    cmd = [*main_ppo(sys.executable, recipes_dir, profile), "trainer.logger=[console,file]",
           f"+actor_rollout_ref.rollout.engine_kwargs.hf.trace_path={trace_path}", *overrides]
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                if time.monotonic() - start > timeout:
                    raise subprocess.TimeoutExpired(cmd, timeout)
                if on_poll is not None:
                    on_poll(proc.pid)
                time.sleep(poll_seconds)
        finally:
            if proc.poll() is None:
                kill_process_tree(proc)
    trace = ([json.loads(line) for line in trace_path.read_text().splitlines() if line.strip()]
             if trace_path.exists() else [])
    return TrainerRun(proc.returncode, time.monotonic() - start, log_path,
                      read_step_metrics(metrics_path, missing_ok=True), trace)
