"""The schedule as data: stages of steps, each step one command with its inputs and outputs.

:func:`build_plan` turns a :class:`~verl_rise.schedule.config.RunConfig` into the nine stages of Metis-RISE
(arXiv 2506.13056): RL (verl ``main_ppo``), merge to HF (verl's model merger), the post-RL pass-rate sweep (a
validation-only ``main_ppo`` run sampling k responses per training prompt, then ``verl_rise.passrate
ingest-dumps``), the hard / inconsistent / solved export, the SFT-set build, SFT (verl's ``sft_trainer`` under
torchrun), merge, evaluation of the base / RL / SFT models on the held-out sets (verl validation), and the report.

Every command is a real command line: ``--dry-run`` prints them for Slurm or Ray users to run by hand. A value that
is only known once an earlier stage ran (the latest checkpoint step) is a :class:`Deferred` argument, printed as a
shell ``$(cat ...)`` expression and resolved by the runner.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

from verl_rise.schedule import STAGES
from verl_rise.schedule.config import RunConfig
from verl_rise.schedule.fingerprint import Input
from verl_rise.verl_commands import (
    EVAL_BENCHMARK_REWARD,
    MODEL_CARD_MAX_NEW_TOKENS,
    MODEL_CARD_MAX_PIXELS,
    MODEL_CARD_MIN_PIXELS,
    SWEEP_REWARD,
    generation_overrides,
    override_key,
    hydra_list,
    hydra_value,
    main_ppo,
    model_merger,
    reward_overrides,
    sampling_overrides,
    sft_trainer,
    validation_only_overrides,
)


class PlanError(RuntimeError):
    """A stage cannot start: the message says what is missing and how to fix it."""


@dataclass(frozen=True)
class Deferred:
    """A command-line argument known only at run time (e.g. the latest checkpoint directory).

    Attributes:
        shell: how ``--dry-run`` prints it (a shell expression that computes the value).
        resolve: returns the value when the step starts; raises :class:`PlanError` when it cannot.
    """

    shell: str
    resolve: Callable[[], str]


Arg = Union[str, Deferred]


@dataclass
class Step:
    """One command of a stage.

    Attributes:
        name: unique within the stage.
        argv: the command; :class:`Deferred` items are resolved when the step starts.
        outputs: files/directories the step writes; removed before a fresh start (never before a resume).
        inputs: external files/directories whose content goes into the fingerprint.
        upstream: stages whose fingerprints go into this step's (it reads their outputs).
        after: earlier steps of the same stage it depends on (None: the previous step, if any).
        env: extra environment; ``{attempt}`` in a value becomes the attempt number (left out of the fingerprint).
        resumable: an interrupted attempt is continued by rerunning the same command (verl resume_mode=auto on
            the same checkpoint directory) instead of starting over.
        precheck: called before the step runs; raises :class:`PlanError` to stop the schedule with a message.
        note: one-line comment printed above the command by ``--dry-run``.
        owned_keys: the Hydra keys the plan sets in ``argv`` itself; pre-flight refuses a user override of one.
    """

    name: str
    argv: list[Arg]
    outputs: list[Path] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    after: Optional[list[str]] = None
    env: dict[str, str] = field(default_factory=dict)
    resumable: bool = False
    precheck: Optional[Callable[[], None]] = None
    note: str = ""
    owned_keys: tuple[str, ...] = ()

    def shell_argv(self) -> list[str]:
        """argv with deferred items in their shell form (the form fingerprints and ``--dry-run`` use)."""
        return [a.shell if isinstance(a, Deferred) else a for a in self.argv]

    def resolved_argv(self) -> list[str]:
        """argv with deferred items resolved (raises :class:`PlanError` when one cannot be)."""
        return [a.resolve() if isinstance(a, Deferred) else a for a in self.argv]

    def shell_command(self, attempt: int = 1) -> str:
        """One line a shell can run: ``VAR=value ... cmd args`` with each word quoted as needed."""
        env = [f"{k}={shlex.quote(v.replace('{attempt}', str(attempt)))}" for k, v in self.env.items()]
        words = []
        for a in self.argv:
            # A deferred value is a shell expression: keep $(...) live, quote the rest of the word.
            words.append(f'"{a.shell}"' if isinstance(a, Deferred) else shlex.quote(a))
        return " ".join(env + words)


@dataclass
class Stage:
    """A stage of the schedule: its directory (manifest, logs, outputs) and steps."""

    name: str
    directory: Path
    steps: list[Step]
    description: str

    @property
    def upstream(self) -> list[str]:
        """Stages this one reads from (union over its steps)."""
        seen: list[str] = []
        for step in self.steps:
            for name in step.upstream:
                if name not in seen:
                    seen.append(name)
        return seen


# --------------------------------------------------------------------------------------------------------------
# Paths of the run directory
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLayout:
    """Where each stage writes, under the run directory."""

    root: Path

    def stage(self, name: str) -> Path:
        return self.root / name

    @property
    def rl_ckpt(self) -> Path:
        return self.root / "rl" / "ckpt"

    @property
    def rl_metrics(self) -> Path:
        """verl file-logger JSONL of the RL stage, one file per attempt (verl's FileLogger truncates its file)."""
        return self.root / "rl" / "metrics"

    @property
    def rl_val_dumps(self) -> Path:
        return self.root / "rl" / "val_dumps"

    @property
    def rl_hf(self) -> Path:
        return self.root / "merge_rl" / "hf"

    @property
    def sweep_dumps(self) -> Path:
        return self.root / "sweep" / "dumps"

    @property
    def sweep_stats(self) -> Path:
        return self.root / "sweep" / "stats"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def sft_data(self) -> Path:
        return self.root / "sft_data"

    @property
    def sft_ckpt(self) -> Path:
        return self.root / "sft" / "ckpt"

    @property
    def sft_metrics(self) -> Path:
        return self.root / "sft" / "metrics"

    @property
    def sft_hf(self) -> Path:
        return self.root / "merge_sft" / "hf"

    def eval_run(self, model: str, kind: str) -> Path:
        """Directory of one evaluation run: ``kind`` is ``greedy`` (pass@1) or ``sampled`` (pass@k)."""
        return self.root / "eval" / model / kind

    @property
    def eval_results(self) -> Path:
        return self.root / "eval" / "results.json"

    @property
    def report(self) -> Path:
        return self.root / "report"


def latest_checkpoint(ckpt_dir: Path, subdir: str = "") -> Deferred:
    """The newest ``global_step_N`` verl recorded in ``latest_checkpointed_iteration.txt`` (+ ``subdir``)."""
    tracker = ckpt_dir / "latest_checkpointed_iteration.txt"
    tail = f"/{subdir}" if subdir else ""

    def resolve() -> str:
        try:
            step = int(tracker.read_text().strip())
        except (OSError, ValueError) as exc:
            raise PlanError(f"no checkpoint to merge: {tracker} is missing or unreadable ({exc}); the training "
                            f"stage must save at least one checkpoint (trainer.save_freq > 0)") from None
        path = ckpt_dir / f"global_step_{step}" / subdir if subdir else ckpt_dir / f"global_step_{step}"
        if not path.is_dir():
            raise PlanError(f"{tracker} names step {step} but {path} does not exist")
        return str(path)

    return Deferred(f"{ckpt_dir}/global_step_$(cat {tracker}){tail}", resolve)


# --------------------------------------------------------------------------------------------------------------
# Hydra override helpers
# --------------------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanOptions:
    """Facts about the composed RL configuration that change which commands run (found by the pre-flight).

    Attributes:
        rl_validates_at_end: the RL run validates after its last step (``trainer.test_freq > 0``).
        sft_platform: ``VERL_PLATFORM`` for the SFT trainer's torchrun ranks, or None for verl's auto-detection.
            ``"cpu"`` when the SFT profile sets ``trainer.device=cpu`` (rise_sft_cpu_tiny): verl resolves its platform
            at import, before Hydra, so only the environment can select verl-rise's CPU platform there. (The RL
            profiles select it for their Ray workers in the recipe itself.)
    """

    rl_validates_at_end: bool = True
    sft_platform: Optional[str] = None
    #: The SFT profile's ``data.max_length`` and image pixel range (``data.mm_processor_kwargs``): the SFT-set build
    #: rejects rows longer than that (tokens counted as verl's SFT dataset will see them), and the SFT step's
    #: precheck compares the built set's longest row with it. None: not known (no pre-flight ran).
    sft_max_length: Optional[int] = None
    sft_pixels: Optional[tuple[int, int]] = None


def _recipes_input(config: RunConfig) -> tuple[Path, str]:
    """The recipe files as a fingerprint input (YAML only: a README edit reruns nothing)."""
    return (config.recipes, "*.yaml")


def _python(config: RunConfig) -> str:
    return config.launch.python or sys.executable


def _loggers(config: RunConfig) -> str:
    names = ["console", "file"] + [n for n in config.launch.loggers if n not in ("console", "file")]
    return "[" + ",".join(names) + "]"


def _main_ppo(config: RunConfig) -> list[str]:
    return main_ppo(_python(config), config.recipes, config.profiles.rl)


def val_batch_size(config: RunConfig, samples_per_prompt: int) -> str:
    """``data.val_batch_size=N`` for a validation-only run: at most ``launch.val_batch_responses`` responses (prompts x
    samples per prompt) per batch.

    verl's v1 trainer takes ``val_batch_size or len(val_dataset)`` prompts per validation batch
    (trainer/ppo/v1/trainer_base.py:754), so an unset size makes the whole sweep (train rows x k responses, each
    with its fp32 pixel values) one batch held on the driver: ~200 GB at 3k prompts x 8.
    """
    return f"data.val_batch_size={max(1, config.launch.val_batch_responses // max(1, samples_per_prompt))}"


#: torchrun's c10d rendezvous port when neither the run config nor the environment names one.
DEFAULT_RDZV_PORT = 29500


def _env_endpoint() -> Deferred:
    """``$MASTER_ADDR:$MASTER_PORT`` of the environment the SFT command runs in."""

    def resolve() -> str:
        addr = os.environ.get("MASTER_ADDR")
        if not addr:
            raise PlanError("multi-node SFT needs a rendezvous address: set launch.sft_rdzv_endpoint (HOST:PORT) "
                            "in the run configuration or export MASTER_ADDR (and MASTER_PORT) on every node")
        return f"{addr}:{os.environ.get('MASTER_PORT', DEFAULT_RDZV_PORT)}"

    return Deferred(f"${{MASTER_ADDR:?set MASTER_ADDR or launch.sft_rdzv_endpoint}}:"
                    f"${{MASTER_PORT:-{DEFAULT_RDZV_PORT}}}", resolve)


def _slurm_first_node_endpoint() -> Deferred:
    """The first node of the current Slurm allocation, port 29500 (where srun's task 0 runs)."""

    def resolve() -> str:
        nodelist = os.environ.get("SLURM_JOB_NODELIST")
        if not nodelist:
            raise PlanError("launch.sft_launcher is srun but this process is not inside a Slurm allocation "
                            "(SLURM_JOB_NODELIST is unset): run verl-rise from the batch script or salloc shell")
        try:
            out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                                 check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise PlanError(f"cannot list the allocation's nodes with scontrol ({exc})") from None
        return f"{out[0]}:{DEFAULT_RDZV_PORT}"

    return Deferred(f'$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1):{DEFAULT_RDZV_PORT}', resolve)


def sft_launcher(config: RunConfig) -> tuple[list[Arg], list[Arg]]:
    """``(prefix, torchrun rendezvous arguments)`` of the SFT command (:func:`verl_rise.verl_commands.sft_trainer`).

    One node: ``torchrun --standalone --nnodes=1``. Several nodes (``launch.sft_nnodes``): torchrun with a c10d
    rendezvous (``--nnodes=N --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT --rdzv_id=...``; node ranks are
    assigned by the rendezvous, so the same command runs on every node), started on each node by the user
    (``sft_launcher: torchrun``) or by ``srun --nodes=N --ntasks-per-node=1`` (``sft_launcher: srun``). verl's SFT
    trainer reads neither ``trainer.nnodes`` nor ``trainer.n_gpus_per_node``: the world size is torchrun's.
    """
    launch = config.launch
    if launch.sft_nnodes == 1:
        return [], ["--standalone", "--nnodes=1"]
    if launch.sft_rdzv_endpoint is not None:
        endpoint: Arg = f"--rdzv_endpoint={launch.sft_rdzv_endpoint}"
    else:
        default = _slurm_first_node_endpoint() if launch.sft_launcher == "srun" else _env_endpoint()
        endpoint = Deferred(f"--rdzv_endpoint={default.shell}",
                            lambda: f"--rdzv_endpoint={default.resolve()}")
    # One rendezvous id per run directory, so two runs on one endpoint never join each other.
    rdzv_id = "verl-rise-sft-" + re.sub(r"[^A-Za-z0-9]+", "-", str(config.run_dir)).strip("-")[-64:]
    rendezvous: list[Arg] = [f"--nnodes={launch.sft_nnodes}", "--rdzv_backend=c10d", endpoint, f"--rdzv_id={rdzv_id}"]
    prefix: list[Arg] = []
    if launch.sft_launcher == "srun":
        prefix = ["srun", f"--nodes={launch.sft_nnodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    return prefix, rendezvous


def reuse_rl_validation(config: RunConfig, options: PlanOptions) -> tuple[bool, str]:
    """Whether the base and RL accuracy come from the RL run's own validation, and why (or why not)."""
    if not config.eval.reuse_rl_validation:
        return False, "eval.reuse_rl_validation is false"
    if config.stage_overrides("eval"):
        return False, "overrides.eval change the evaluation settings, so the RL run's validation is not comparable"
    if not options.rl_validates_at_end:
        return False, "the RL run does not validate after its last step (trainer.test_freq <= 0)"
    return True, ("the RL run validated on the same held-out files with the same settings before its first step "
                  "(base) and after its last step (RL)")


def _validation_run(ctx: "_Context", model_path: Union[str, Deferred], out: Path, val_files: list[str],
                    train_file: str, user: list[str], runner: list[str]) -> tuple[list[Arg], tuple[str, ...]]:
    """A validation-only main_ppo run (``trainer.val_only``) of an HF model directory on parquet files.

    Returns:
        ``(argv, keys the plan sets)``: the RL stage's user overrides, the validation-only overrides, then the
        stage's user overrides ``user``, then the plan's ``runner`` overrides (so those win).
    """
    config = ctx.config
    val_only = validation_only_overrides(str(model_path), val_files, train_file, out, _loggers(config))
    argv = [*_main_ppo(config), *config.stage_overrides("rl"), *val_only, *user, *runner]
    return argv, _owned([*val_only, *runner])


@dataclass(frozen=True)
class _Context:
    """What every stage builder reads: the config, the run layout and the values derived from them once."""

    config: RunConfig
    options: PlanOptions
    layout: RunLayout
    python: str
    train: str
    held_out: list[str]
    env: dict[str, str]
    reuse_rl_validation: bool


def _owned(overrides: list[str]) -> tuple[str, ...]:
    return tuple(override_key(o) for o in overrides)


def rl_stage(ctx: _Context) -> Stage:
    """1. RL: GRPO with the RISE recipe (verl ``main_ppo``).

    Validation on the held-out sets before the first step (the base model) and after the last (the RL model) feeds
    the evaluation table when the RL run's validation is reused.
    """
    config, L = ctx.config, ctx.layout
    runner = [
        f"data.train_files={hydra_value(ctx.train)}",
        f"data.val_files={hydra_list(ctx.held_out)}",
        f"actor_rollout_ref.model.path={hydra_value(str(config.model))}",
        f"trainer.default_local_dir={hydra_value(str(L.rl_ckpt))}",
        f"trainer.validation_data_dir={hydra_value(str(L.rl_val_dumps))}",
        f"trainer.logger={_loggers(config)}",
        "trainer.resume_mode=auto",
        # Held-out sets are evaluated whole (profiles may cap validation, e.g. cpu_tiny: 8 rows).
        "data.val_max_samples=-1",
        *(["trainer.val_before_train=true"] if ctx.reuse_rl_validation else []),
    ]
    return Stage("rl", L.stage("rl"), [Step(
        "main_ppo", [*_main_ppo(config), *config.stage_overrides("rl"), *runner],
        outputs=[L.rl_ckpt, L.rl_metrics, L.rl_val_dumps],
        inputs=[config.model, config.data.train, *config.data.held_out.values(), _recipes_input(config)],
        env={**ctx.env, "VERL_FILE_LOGGER_PATH": str(L.rl_metrics / "attempt-{attempt}.jsonl")},
        resumable=True, owned_keys=_owned(runner),
        note="GRPO (RL incentivization); rerunning resumes from the newest checkpoint (trainer.resume_mode=auto)",
    )], "RL: GRPO with the RISE recipe (verl main_ppo)")


def merge_rl_stage(ctx: _Context) -> Stage:
    """2. The last RL checkpoint merged to a Hugging Face model directory (verl's model merger)."""
    L = ctx.layout
    return Stage("merge_rl", L.stage("merge_rl"), [Step(
        "model_merger", model_merger(ctx.python, latest_checkpoint(L.rl_ckpt, "actor"), L.rl_hf),
        outputs=[L.rl_hf], upstream=["rl"], env=ctx.env,
        note="verl's model merger: newest RL checkpoint -> HF model",
    )], "merge the RL checkpoint to HF (verl.model_merger)")


def sweep_stage(ctx: _Context) -> Stage:
    """3. The post-RL pass-rate sweep: k samples per training prompt from the RL model (a validation-only
    ``main_ppo`` run with the sweep reward), then the dumps ingested into per-prompt pass rates."""
    config, L = ctx.config, ctx.layout
    sweep = config.sweep
    runner = [*sampling_overrides(sweep.k, sweep.temperature, sweep.top_p), val_batch_size(config, sweep.k),
              *reward_overrides(SWEEP_REWARD)]
    argv, owned = _validation_run(ctx, str(L.rl_hf), L.stage("sweep"), [ctx.train], ctx.train,
                                  config.stage_overrides("sweep"), runner)
    metrics = L.stage("sweep") / "metrics.jsonl"
    return Stage("sweep", L.stage("sweep"), [
        Step("sample", argv, outputs=[L.sweep_dumps, metrics],
             inputs=[config.data.train, _recipes_input(config)], upstream=["merge_rl"],
             env={**ctx.env, "VERL_FILE_LOGGER_PATH": str(metrics)}, owned_keys=owned,
             note=f"post-RL sweep: {sweep.k} responses per training prompt at temperature {sweep.temperature} "
                  f"(validation-only main_ppo)"),
        Step("ingest", [ctx.python, "-m", "verl_rise.passrate", "ingest-dumps", str(L.sweep_dumps), "--dir",
                        str(L.sweep_stats), "--quiet"],
             outputs=[L.sweep_stats], env=ctx.env, note="per-prompt pass rates from the sweep's dumps"),
    ], "post-RL pass-rate sweep (verl validation-only run + ingest)")


def export_stage(ctx: _Context) -> Stage:
    """4. The hard / inconsistent / solved split with pass-rate columns (``verl_rise.passrate export``)."""
    config, L = ctx.config, ctx.layout
    return Stage("export", L.export, [Step(
        "export",
        [ctx.python, "-m", "verl_rise.passrate", "export", "--stats", str(L.sweep_stats), "--dataset", ctx.train,
         "--out", str(L.export), "--quiet", *config.stage_overrides("export")],
        outputs=[L.export / name for name in EXPORT_FILES], inputs=[config.data.train], upstream=["sweep"],
        env=ctx.env, note="hard / inconsistent / solved split with pass-rate columns",
    )], "export the pass-rate split (verl_rise.passrate export)")


def sft_data_stage(ctx: _Context) -> Stage:
    """5. The SFT set: self-distilled responses for inconsistent prompts, verified expert trajectories for hard
    ones (``verl_rise.sft_data build``)."""
    config, L = ctx.config, ctx.layout
    args: list[Arg] = [ctx.python, "-m", "verl_rise.sft_data", "build", "--export-dir", str(L.export),
                       "--out", str(L.sft_data), "--tokenizer", str(L.rl_hf), "--no-progress"]
    expert = config.expert
    for f in expert.files:
        args += ["--expert-file", str(f)]
    if expert.files:
        args += ["--expert-key", expert.key]
        if expert.image_root is not None:
            args += ["--expert-image-root", str(expert.image_root)]
    if expert.endpoint is not None:
        args += ["--endpoint-base-url", expert.endpoint.base_url, "--endpoint-model", expert.endpoint.model,
                 "--api-key-env", expert.endpoint.api_key_env,
                 "--samples-per-prompt", str(expert.endpoint.samples_per_prompt)]
    if ctx.options.sft_max_length is not None:
        args += ["--max-length", str(ctx.options.sft_max_length)]
        if ctx.options.sft_pixels is not None:
            args += ["--min-pixels", str(ctx.options.sft_pixels[0]), "--max-pixels", str(ctx.options.sft_pixels[1])]
    args += config.stage_overrides("sft_data")
    return Stage("sft_data", L.sft_data, [Step(
        "build", args, outputs=[L.sft_data / name for name in SFT_DATA_FILES], inputs=list(expert.files),
        upstream=["export", "merge_rl"], env=ctx.env, precheck=lambda: check_expert_source(config, L),
        note="SFT set: self-distilled responses (inconsistent) + verified expert trajectories (hard)",
    )], "build the SFT set (verl_rise.sft_data build)")


def sft_stage(ctx: _Context) -> Stage:
    """6. SFT of the RL model: verl's SFT trainer under torchrun."""
    config, L = ctx.config, ctx.layout
    runner = [
        f"data.train_files={hydra_value(str(L.sft_data / 'sft.parquet'))}",
        f"model.path={hydra_value(str(L.rl_hf))}",
        f"trainer.default_local_dir={hydra_value(str(L.sft_ckpt))}",
        f"trainer.logger={_loggers(config)}",
        "trainer.resume_mode=auto",
    ]
    prefix, rendezvous = sft_launcher(config)
    argv = [*sft_trainer(ctx.python, config.recipes, config.profiles.sft, config.launch.sft_nproc_per_node,
                         rendezvous=rendezvous, prefix=prefix),
            *config.stage_overrides("sft"), *runner]
    nnodes = config.launch.sft_nnodes
    platform = {"VERL_PLATFORM": ctx.options.sft_platform} if ctx.options.sft_platform else {}
    return Stage("sft", L.stage("sft"), [Step(
        "sft_trainer", argv, outputs=[L.sft_ckpt, L.sft_metrics], inputs=[_recipes_input(config)],
        upstream=["sft_data", "merge_rl"], resumable=True, owned_keys=_owned(runner),
        env={**ctx.env, **platform, "VERL_FILE_LOGGER_PATH": str(L.sft_metrics / "attempt-{attempt}.jsonl")},
        precheck=lambda: check_sft_set(L, ctx.options.sft_max_length),
        note="SFT enhancement of the RL model; rerunning resumes from the newest checkpoint" + (
            f"; start this same command on each of the {nnodes} nodes (torchrun rendezvous)"
            if nnodes > 1 and config.launch.sft_launcher == "torchrun" else ""),
    )], "SFT of the RL model (verl sft_trainer)")


def merge_sft_stage(ctx: _Context) -> Stage:
    """7. The last SFT checkpoint merged to a Hugging Face model directory."""
    L = ctx.layout
    return Stage("merge_sft", L.stage("merge_sft"), [Step(
        "model_merger", model_merger(ctx.python, latest_checkpoint(L.sft_ckpt), L.sft_hf),
        outputs=[L.sft_hf], upstream=["sft"], env=ctx.env,
        note="verl's model merger: newest SFT checkpoint -> HF model",
    )], "merge the SFT checkpoint to HF (verl.model_merger)")


def benchmark_generation(config: RunConfig) -> list[str]:
    """The generation overrides of the benchmark runs: the model card's (``eval.generation: model_card``: images
    between 128 and 16384 x 28 x 28 pixels, up to 8192 new tokens) or none (``profile``: the RL recipe's)."""
    if config.eval.generation != "model_card":
        return []
    return generation_overrides(MODEL_CARD_MIN_PIXELS, MODEL_CARD_MAX_PIXELS, MODEL_CARD_MAX_NEW_TOKENS,
                                config.eval.max_prompt_length)


def eval_stage(ctx: _Context) -> Stage:
    """8. Evaluation of the base, RL and SFT models on the held-out sets (verl validation-only runs, or the RL run's
    own validation when reused), and on the benchmarks of ``eval.benchmarks`` (one validation-only run per model
    with the benchmark reward and the model card's generation settings), collected into ``eval/results.json``."""
    config, L = ctx.config, ctx.layout
    held_out = ctx.held_out
    models: dict[str, tuple[str, list[str]]] = {
        "base": (str(config.model), []),
        "rl": (str(L.rl_hf), ["merge_rl"]),
        "sft": (str(L.sft_hf), ["merge_sft"]),
    }
    steps: list[Step] = []
    collect = [ctx.python, "-m", "verl_rise.schedule.evaluate", "--out", str(L.eval_results)]
    for name in sorted(config.data.held_out):
        collect += ["--held-out", f"{name}={config.data.held_out[name]}"]
    runs: list[tuple[str, str, list[str]]] = [("greedy", "greedy (accuracy = pass@1)", [val_batch_size(config, 1)])]
    if config.eval.pass_at_k is not None:
        n = config.eval.samples
        runs.append(("sampled", f"{n} samples per prompt for pass@{config.eval.pass_at_k}",
                     [*sampling_overrides(n, config.sweep.temperature, config.sweep.top_p),
                      val_batch_size(config, n), *reward_overrides(SWEEP_REWARD)]))
    for model, (path, upstream) in models.items():
        inputs = [config.model] if model == "base" else []
        for kind, what, runner in runs:
            if kind == "greedy" and ctx.reuse_rl_validation and model in ("base", "rl"):
                collect += ["--greedy", f"{model}={L.rl_metrics}@{'first' if model == 'base' else 'last'}",
                            "--greedy-dumps", f"{model}={L.rl_val_dumps}"]
                continue
            out = L.eval_run(model, kind)
            argv, owned = _validation_run(ctx, path, out, held_out, held_out[0], config.stage_overrides("eval"),
                                          runner)
            steps.append(Step(
                f"{model}_{kind}", argv, outputs=[out],
                inputs=[*inputs, *config.data.held_out.values(), _recipes_input(config)], upstream=upstream,
                after=[], env={**ctx.env, "VERL_FILE_LOGGER_PATH": str(out / "metrics.jsonl")}, owned_keys=owned,
                note=f"{model} model, {what} on the held-out sets",
            ))
            collect += [f"--{kind}", f"{model}={out / 'metrics.jsonl'}@first" if kind == "greedy"
                        else f"{model}={out / 'dumps'}"]
            if kind == "greedy":
                collect += ["--greedy-dumps", f"{model}={out / 'dumps'}"]
    benchmarks = config.eval.benchmarks
    if benchmarks:
        files = [str(p) for p in benchmarks.values()]
        runner = [*benchmark_generation(config), *reward_overrides(EVAL_BENCHMARK_REWARD)]
        collect += [w for key, p in benchmarks.items() for w in ("--benchmark-file", f"{key}={p}")]
        for model, (path, upstream) in models.items():
            out = L.eval_run(model, "benchmarks")
            argv, owned = _validation_run(ctx, path, out, files, files[0], config.stage_overrides("eval"), runner)
            steps.append(Step(
                f"{model}_benchmarks", argv, outputs=[out],
                inputs=[*([config.model] if model == "base" else []), *benchmarks.values(), _recipes_input(config)],
                upstream=upstream, after=[], env={**ctx.env, "VERL_FILE_LOGGER_PATH": str(out / "metrics.jsonl")},
                owned_keys=owned,
                note=f"{model} model on the benchmarks {', '.join(benchmarks)} (benchmark reward, strict and lenient; "
                     f"generation: {config.eval.generation})",
            ))
            collect += ["--benchmarks", f"{model}={out / 'dumps'}"]
    if config.eval.pass_at_k is not None:
        collect += ["--k", str(config.eval.pass_at_k)]
    inputs = [*config.data.held_out.values(), *benchmarks.values()]
    steps.append(Step(
        "collect", collect, outputs=[L.eval_results], inputs=inputs,
        upstream=["rl"] if ctx.reuse_rl_validation else [], after=[s.name for s in steps], env=ctx.env,
        note="accuracy (pass@1) and pass@k per model and data_source, benchmark metrics -> eval/results.json",
    ))
    return Stage("eval", L.stage("eval"), steps, "evaluate base / RL / SFT on the held-out sets (verl validation)")


def report_stage(ctx: _Context) -> Stage:
    """9. The markdown + PNG report."""
    L = ctx.layout
    return Stage("report", L.report, [Step(
        "report", [ctx.python, "-m", "verl_rise.schedule.report", "--run-dir", str(ctx.config.run_dir)],
        outputs=[L.report], upstream=["rl", "sweep", "export", "sft_data", "sft", "eval"], env=ctx.env,
        note="markdown + PNG report",
    )], "write the report (markdown + PNGs)")


#: One builder per stage, in schedule order (:data:`verl_rise.schedule.STAGES`). A new stage is a function
#: ``(ctx) -> Stage`` added here and to ``STAGES``.
STAGE_BUILDERS: dict[str, Callable[[_Context], Stage]] = {
    "rl": rl_stage, "merge_rl": merge_rl_stage, "sweep": sweep_stage, "export": export_stage,
    "sft_data": sft_data_stage, "sft": sft_stage, "merge_sft": merge_sft_stage, "eval": eval_stage,
    "report": report_stage,
}


def build_plan(config: RunConfig, options: PlanOptions = PlanOptions()) -> list[Stage]:
    """The stages of ``config``'s schedule, in order (see the module docstring).

    Args:
        config: the validated run configuration.
        options: facts about the composed RL recipe (:class:`PlanOptions`).

    Returns:
        One :class:`Stage` per name in :data:`verl_rise.schedule.STAGES`, in that order.
    """
    ctx = _Context(
        config=config, options=options, layout=RunLayout(config.run_dir), python=_python(config),
        train=str(config.data.train), held_out=[str(p) for p in config.data.held_out.values()],
        env={"PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1", **config.launch.env},
        reuse_rl_validation=reuse_rl_validation(config, options)[0],
    )
    assert tuple(STAGE_BUILDERS) == STAGES
    return [build(ctx) for build in STAGE_BUILDERS.values()]


def owned_override_keys(stages: list[Stage]) -> dict[str, set[str]]:
    """``{stage name: Hydra keys its steps set themselves}``: a user override of one of them is refused by the
    pre-flight (the run config's fields set them instead)."""
    return {stage.name: {k for step in stage.steps for k in step.owned_keys} for stage in stages}


#: What the export writes (verl_rise.passrate export); the stage is complete when all exist.
EXPORT_FILES = ("hard.parquet", "inconsistent.parquet", "solved.parquet", "unseen.parquet", "summary.json")
#: What the SFT-set build writes (verl_rise.sft_data build).
SFT_DATA_FILES = ("sft.parquet", "stats.json", "coverage.jsonl", "rejects.jsonl")


def check_expert_source(config: RunConfig, layout: RunLayout) -> None:
    """Refuse to build the SFT set when the export has hard prompts and no expert source is configured.

    Raises:
        PlanError: hard prompts exist (export summary.json) but ``expert`` names no file and no endpoint.
    """
    summary_path = layout.export / "summary.json"
    summary = json.loads(summary_path.read_text())
    hard = hard_prompt_count(summary)
    if hard > 0 and not config.expert.configured:
        raise PlanError(
            f"{hard} training prompts are hard (pass rate 0 in {summary_path}) and the configuration names no expert "
            f"source: add expert.files (JSONL of expert trajectories) and/or expert.endpoint (an OpenAI-compatible "
            f"server); Metis-RISE trains on expert trajectories for the prompts the RL model never solves")


def hard_prompt_count(summary: dict) -> int:
    """Hard prompts in an export ``summary.json`` (``prompts_per_bucket.hard``, verl_rise.passrate.export).

    Raises:
        PlanError: the summary has no such count (an export from another version).
    """
    try:
        return int(summary["prompts_per_bucket"]["hard"])
    except (KeyError, TypeError, ValueError):
        raise PlanError(f"export summary has no prompts_per_bucket.hard (keys: {sorted(summary)})") from None


def check_sft_set(layout: RunLayout, max_length: Optional[int] = None) -> None:
    """Refuse to start SFT on an empty SFT set, or on one whose longest row exceeds the SFT profile's
    ``data.max_length`` (``truncation: error`` would stop the run at that row, hours in).

    Args:
        layout: the run directory.
        max_length: the SFT profile's ``data.max_length`` (None: not checked).

    Raises:
        PlanError: ``sft_data/stats.json`` reports 0 rows, has no token lengths while ``max_length`` is given, or
            its longest row (``tokens.max_total``) is longer than ``max_length``.
    """
    stats_path = layout.sft_data / "stats.json"
    stats = json.loads(stats_path.read_text())
    if int(stats.get("sft_rows", 0)) == 0:
        raise PlanError(f"the SFT set is empty ({stats_path}: sft_rows 0): every prompt was solved or none could be "
                        f"covered; see {layout.sft_data / 'coverage.jsonl'}")
    if max_length is None:
        return
    longest = (stats.get("tokens") or {}).get("max_total")
    if longest is None:
        raise PlanError(f"{stats_path} has no token lengths (tokens.max_total): rebuild the SFT set with a "
                        f"tokenizer so that its rows can be checked against the SFT profile's max_length {max_length}")
    if int(longest) > max_length:
        raise PlanError(f"the longest SFT row has {int(longest)} tokens ({stats_path}: tokens.max_total) and the SFT "
                        f"profile's data.max_length is {max_length}: verl's SFT trainer (truncation: error) would "
                        f"stop at that row; rebuild the set with --max-length {max_length} or raise data.max_length")
