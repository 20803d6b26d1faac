"""Run verl's own ``main_ppo`` in validation-only mode on an HF model and a parquet file, and collect the dumps.

One place for what the post-RL pass-rate sweep (``python -m verl_rise.passrate sweep``) and the evaluation stage
(pass@1 / pass@k on held-out sets) both need: sample ``n`` responses per prompt with verl's rollout, score them
with verl's reward loop, and keep every scored response. Using verl itself (not a separate generate script) means
the same chat template, image processing, length filter, rollout engine and reward workers as training, and it
scales as training does (vLLM/SGLang on GPUs, the hf engine on a CPU).

What it sets on top of the recipe (verl 0.9.1, file:line in the installed package):

* ``trainer.val_only=true`` + ``trainer.val_before_train=true``: ``fit`` validates once and returns before any
  training step (trainer_base.py:481-490);
* ``trainer.resume_mode=disable`` and a fresh ``trainer.default_local_dir``: the model comes from
  ``actor_rollout_ref.model.path`` only, never from a checkpoint directory that happens to exist
  (trainer_base.py:851-876). An RL checkpoint is merged to HF format first (``python -m verl.model_merger merge
  --backend fsdp --local_dir CKPT/global_step_N/actor --target_dir OUT``);
* ``data.val_files=data`` (and ``data.train_files=data``: verl builds the training dataset even in a
  validation-only run), ``data.val_max_samples=-1``: every row (profiles may cap validation);
* ``actor_rollout_ref.rollout.val_kwargs.{n,do_sample,temperature,top_p,top_k}``: the v1 agent loop reads only
  temperature / top_p / top_k (agent_loop_tq.py:72-76) and ``n`` (agent_loop_tq.py:115);
* ``trainer.validation_data_dir=<out>/dumps``: verl writes ``<global_step>.jsonl`` there, one line per response
  with every key the reward function returned (``_write_generations``, trainer_base.py:1226-1260); the global
  step is 0 (no checkpoint is loaded);
* ``trainer.logger=[console,file]`` with ``VERL_FILE_LOGGER_PATH=<out>/metrics.jsonl``: verl's validation
  metrics (``val-core/<data_source>/acc/mean@n``, ...) as JSON lines; ``hydra.run.dir=<out>/hydra``: the
  composed config.

Overrides given by the caller come last, so any of these can be changed (e.g. ``trainer.logger=[console,wandb]``).
Rows longer than ``data.max_prompt_length`` are dropped by verl's dataset (``filter_overlong_prompts``) and so
have no dump lines; callers that need every row accounted for compare the dumps with the parquet.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from verl_rise.file_logger import merged_metrics
from verl_rise.processes import kill_process_tree, last_log_line, log_tail
from verl_rise.verl_commands import (
    RISE_REWARD,
    main_ppo,
    reward_overrides,
    sampling_overrides,
    validation_only_overrides,
)

DEFAULT_RECIPE = "rise_grpo_7b"
LOG_TAIL_LINES = 40


class ValidationRunError(RuntimeError):
    """``main_ppo`` failed, timed out or wrote no dump; the message names the log file and quotes its end."""


@dataclass(frozen=True)
class ValidationRunConfig:
    """What to run.

    Attributes:
        model: HF-format model directory (weights, config, tokenizer and processor files).
        data: RL parquet (data_prep's schema) whose every row is sampled ``n`` times.
        out_dir: run directory: ``dumps/`` (verl's JSONL), ``validation.log``, ``metrics.jsonl``, ``ckpt/`` (unused).
        n: responses per prompt (``val_kwargs.n``), >= 1.
        temperature: sampling temperature, >= 0 (0: greedy; then all ``n`` responses are the same one).
        top_p: nucleus mass in (0, 1]; top_k: -1 keeps all tokens.
        recipe: Hydra config name in ``config_path`` (a runnable profile: ``rise_grpo_7b``, ``rise_grpo_cpu_tiny``).
        config_path: recipes directory (default: the installed ``verl_rise.recipes``).
        reward: ``(path, name)`` of the verl custom reward function.
        overrides: further Hydra overrides, applied last.
    """

    model: Path
    data: Path
    out_dir: Path
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1
    recipe: str = DEFAULT_RECIPE
    config_path: Optional[Path] = None
    reward: tuple[str, str] = RISE_REWARD
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if int(self.n) != self.n or self.n < 1:
            raise ValueError(f"n (responses per prompt) must be an integer >= 1, got {self.n!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")

    @property
    def dump_dir(self) -> Path:
        return Path(self.out_dir) / "dumps"

    @property
    def log_path(self) -> Path:
        return Path(self.out_dir) / "validation.log"

    @property
    def metrics_path(self) -> Path:
        return Path(self.out_dir) / "metrics.jsonl"


@dataclass
class ValidationRunResult:
    """What a finished run left behind.

    Attributes:
        dump_dir: ``trainer.validation_data_dir``; dump_files: its ``*.jsonl`` files (one per validation).
        log_path: the trainer's stdout + stderr; metrics_path: verl's file-logger JSONL.
        metrics: the validation metrics verl logged (merged over the logged lines).
        command: the command that ran; seconds: its wall time.
    """

    dump_dir: Path
    dump_files: list[Path]
    log_path: Path
    metrics_path: Path
    metrics: dict = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    seconds: float = 0.0


def default_config_path() -> Path:
    """The installed recipes directory (``verl_rise.recipes``)."""
    from verl_rise.recipes import RECIPES_DIR

    return Path(RECIPES_DIR)


def build_command(cfg: ValidationRunConfig, python: str = sys.executable) -> list[str]:
    """The ``python -m verl.trainer.main_ppo ...`` command line for ``cfg`` (see the module docstring).

    Returns:
        argv list; paths are absolute so the command runs from any working directory.
    """
    out = Path(cfg.out_dir).resolve()
    data = str(Path(cfg.data).resolve())
    config_path = Path(cfg.config_path or default_config_path()).resolve()
    return [
        *main_ppo(python, config_path, cfg.recipe),
        *validation_only_overrides(str(Path(cfg.model).resolve()), [data], data, out),
        *sampling_overrides(cfg.n, cfg.temperature, cfg.top_p, cfg.top_k),
        *reward_overrides(cfg.reward),
        # Hydra's own output (the composed config, .hydra/) inside the run directory, not ./outputs/<date>.
        f"hydra.run.dir={out / 'hydra'}",
        *cfg.overrides,
    ]


def run_validation(
    cfg: ValidationRunConfig,
    *,
    timeout_s: Optional[float] = None,
    env: Optional[dict] = None,
    progress: bool = True,
    poll_s: float = 1.0,
) -> ValidationRunResult:
    """Run ``main_ppo`` validation-only for ``cfg`` and return where the dumps are.

    Args:
        cfg: what to run; ``cfg.out_dir`` is created. ``out_dir/dumps`` must not hold dumps already (verl names
            them by global step, so a second run would silently replace the first's).
        timeout_s: kill the trainer and its whole process tree after this many seconds.
        env: extra environment variables for the trainer.
        progress: show a spinner with the elapsed time and the log's last line (stderr, terminals only).

    Returns:
        :class:`ValidationRunResult`.

    Raises:
        FileNotFoundError: ``cfg.model`` or ``cfg.data`` missing.
        FileExistsError: ``out_dir/dumps`` already holds ``*.jsonl`` files.
        ValidationRunError: non-zero exit, timeout, or no dump written; names the log and quotes its last lines.
    """
    cfg = dataclasses.replace(cfg, out_dir=Path(cfg.out_dir).resolve())
    for label, path in (("model directory", cfg.model), ("data file", cfg.data)):
        if not Path(path).exists():
            raise FileNotFoundError(f"validation run: {label} not found: {path}")
    if cfg.dump_dir.is_dir() and any(cfg.dump_dir.glob("*.jsonl")):
        raise FileExistsError(
            f"{cfg.dump_dir} already holds validation dumps; use a new output directory (verl would overwrite them)"
        )
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    command = build_command(cfg)
    run_env = dict(os.environ)
    run_env["VERL_FILE_LOGGER_PATH"] = str(cfg.metrics_path.resolve())
    run_env.setdefault("HYDRA_FULL_ERROR", "1")
    run_env.update(env or {})

    start = time.monotonic()
    with open(cfg.log_path, "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        proc = subprocess.Popen(command, cwd=out, env=run_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(proc, cfg, start, timeout_s, progress, poll_s)
        finally:
            if proc.poll() is None:  # timeout, Ctrl-C, or an error while waiting
                kill_process_tree(proc)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise ValidationRunError(
            f"main_ppo validation run failed (exit status {proc.returncode}) after {seconds:.0f}s; "
            f"full log: {cfg.log_path}\n--- last {LOG_TAIL_LINES} lines ---\n{log_tail(cfg.log_path, LOG_TAIL_LINES)}"
        )
    dump_files = sorted(cfg.dump_dir.glob("*.jsonl"))
    if not dump_files:
        raise ValidationRunError(
            f"main_ppo finished but wrote no validation dump in {cfg.dump_dir} (was trainer.validation_data_dir "
            f"overridden, or did every row exceed data.max_prompt_length?); full log: {cfg.log_path}\n"
            f"--- last {LOG_TAIL_LINES} lines ---\n{log_tail(cfg.log_path, LOG_TAIL_LINES)}"
        )
    return ValidationRunResult(cfg.dump_dir, dump_files, cfg.log_path, cfg.metrics_path,
                               merged_metrics(cfg.metrics_path), command, seconds)


def _wait(proc: subprocess.Popen, cfg: ValidationRunConfig, start: float, timeout_s: Optional[float],
          progress: bool, poll_s: float) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    show = progress and console.is_terminal
    status = console.status("main_ppo validation run starting") if show else None
    if status is not None:
        status.start()
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            if timeout_s is not None and elapsed > timeout_s:
                kill_process_tree(proc)
                raise ValidationRunError(
                    f"main_ppo validation run killed after the {timeout_s:.0f}s timeout; full log: {cfg.log_path}\n"
                    f"--- last {LOG_TAIL_LINES} lines ---\n{log_tail(cfg.log_path, LOG_TAIL_LINES)}"
                )
            if status is not None:
                last = last_log_line(cfg.log_path)
                status.update(f"main_ppo validation run ({elapsed:.0f}s): {last}")
            time.sleep(poll_s)
    finally:
        if status is not None:
            status.stop()


__all__ = [
    "ValidationRunConfig",
    "ValidationRunError",
    "ValidationRunResult",
    "build_command",
    "run_validation",
]
