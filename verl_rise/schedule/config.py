"""The run configuration of ``verl-rise run CONFIG``: a YAML file validated with pydantic.

Example (every relative path is resolved against the directory of the YAML file)::

    run_dir: runs/rise_7b
    model: /models/Qwen2.5-VL-7B-Instruct          # HF model directory (config, weights, processor files)
    data:
      train: data/train.parquet                    # RL prompts (data_prep output); also the sweep's prompts
      held_out:                                    # evaluation sets, by name (data_prep output)
        mathvision_testmini: data/testmini.parquet
    expert:                                        # trajectories for the prompts the RL model never solves
      files: [data/expert_traces.jsonl]
      key: mathvision                              # or prompt_id (a field holding our prompt id)
      image_root: data/mathvision
      endpoint: {base_url: http://127.0.0.1:8000/v1, model: Qwen/Qwen2.5-VL-72B-Instruct}
    profiles: {rl: rise_grpo_7b, sft: rise_sft_7b}  # recipe names in recipes_dir
    sweep: {k: 8}                                  # responses per training prompt in the post-RL sweep
    eval:
      pass_at_k: 8                                 # also report pass@k on the held-out sets (null: accuracy only)
      benchmarks:                                  # the paper's six benchmarks (data_prep.benchmarks output)
        mathvista: data/bench/mathvista.parquet    # keys: mathvista mathvision mathverse dynamath wemath logicvista
        dynamath: data/bench/dynamath.parquet
      reference_size: 7b                           # published Qwen2.5-VL / Metis-RISE rows in the report (7b, 72b)
      generation: model_card                       # benchmark runs: model-card settings, or `profile` (the recipe's)
    launch: {sft_nproc_per_node: 8, sft_nnodes: 1}  # SFT ranks; several nodes: sft_launcher srun / torchrun
    overrides:                                     # per stage: Hydra overrides (rl, sweep, sft, eval) or
      rl: [trainer.total_epochs=2]                 # extra command-line options (export, sft_data)
      sft_data: [--self-distill-max, "2"]

Unknown keys are errors (a misspelt key would otherwise be ignored silently).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from verl_rise.evaluation.benchmarks import BENCHMARKS

#: Stages that take Hydra overrides; the others take extra command-line options.
HYDRA_STAGES = ("rl", "sweep", "sft", "eval")
#: Stages whose command-line options can be extended.
CLI_STAGES = ("export", "sft_data")

#: Hydra override syntax: optional +/++/~ prefix, a dotted key, optional =value.
_OVERRIDE_RE = re.compile(r"^(\+\+|\+|~)?[A-Za-z_][\w\-]*(\.[\w\-@]+)*(=.*)?$", re.S)

#: data_source-like names for held-out sets (also file and column names in the report).
_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*$")


class ConfigError(ValueError):
    """The run configuration is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """RL training prompts and held-out evaluation sets (parquet files written by data_prep)."""

    train: Path
    held_out: dict[str, Path] = Field(min_length=1)

    @field_validator("held_out")
    @classmethod
    def _names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not _NAME_RE.match(name):
                raise ValueError(f"held-out set name {name!r}: use letters, digits, '_', '-', '.'")
        return value


class EndpointConfig(_Strict):
    """An OpenAI-compatible chat endpoint asked for expert trajectories (``sft_data build --endpoint-*``)."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    samples_per_prompt: int = Field(4, ge=1)


class ExpertConfig(_Strict):
    """Where expert trajectories for hard prompts come from: JSONL files and/or an endpoint."""

    files: list[Path] = Field(default_factory=list)
    key: str = "prompt_id"
    image_root: Optional[Path] = None
    endpoint: Optional[EndpointConfig] = None

    @property
    def configured(self) -> bool:
        """True when at least one source is named."""
        return bool(self.files) or self.endpoint is not None


class Profiles(_Strict):
    """Recipe (Hydra config) names in ``recipes_dir`` for the RL stage and the SFT stage."""

    rl: str = "rise_grpo_7b"
    sft: str = "rise_sft_7b"


class SweepConfig(_Strict):
    """The post-RL pass-rate sweep: ``k`` sampled responses per training prompt at ``temperature``."""

    k: int = Field(8, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)


#: Benchmark keys of ``eval.benchmarks``, in the paper's column order.
BENCHMARK_KEYS = BENCHMARKS


class EvalConfig(_Strict):
    """Evaluation of the base, RL and SFT models on the held-out sets (verl validation, same reward), and on the
    paper's benchmarks.

    ``benchmarks``: ``{benchmark key: parquet written by data_prep.benchmarks}``; each model is run on them (one
    validation-only run per model) with the benchmark reward, and each benchmark's metric (DynaMath worst case,
    WeMath strict score, accuracy elsewhere) is computed from the dumped samples, strict and lenient extraction.
    ``generation``: ``model_card`` runs the benchmarks with the model card's settings (images between 128 and
    16384 x 28 x 28 pixels, up to 8192 new tokens; ``max_prompt_length`` tokens of prompt), ``profile`` with the RL
    recipe's own (e.g. a CPU profile's tiny budgets). ``reference_size``: the published Qwen2.5-VL and Metis-RISE
    rows of that size shown in the report for reference (null: none).

    ``pass_at_k``: also estimate pass@k from ``pass_samples`` (default k) responses per prompt sampled at the sweep's
    temperature (unbiased estimator, Chen et al. 2021, arXiv 2107.03374). ``reuse_rl_validation``: take the base and
    RL accuracy from the RL stage's own validation (step 0 and the last step) when it ran on the same held-out files
    with the same settings (i.e. no ``overrides.eval``), saving two trainer starts.
    """

    pass_at_k: Optional[int] = Field(None, ge=1)
    pass_samples: Optional[int] = Field(None, ge=1)
    reuse_rl_validation: bool = True
    benchmarks: dict[str, Path] = Field(default_factory=dict)
    reference_size: Optional[Literal["7b", "72b"]] = None
    generation: Literal["model_card", "profile"] = "model_card"
    max_prompt_length: int = Field(17408, ge=1)

    @field_validator("benchmarks")
    @classmethod
    def _benchmark_keys(cls, value: dict[str, Path]) -> dict[str, Path]:
        unknown = [k for k in value if k not in BENCHMARK_KEYS]
        if unknown:
            raise ValueError(f"unknown benchmark {', '.join(map(repr, unknown))}; known: {', '.join(BENCHMARK_KEYS)}")
        return {k: value[k] for k in BENCHMARK_KEYS if k in value}

    @field_validator("reference_size", mode="before")
    @classmethod
    def _size(cls, value):
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _samples(self) -> "EvalConfig":
        if self.pass_samples is not None and self.pass_at_k is None:
            raise ValueError("eval.pass_samples needs eval.pass_at_k")
        if self.pass_at_k is not None and self.pass_samples is not None and self.pass_samples < self.pass_at_k:
            raise ValueError(f"eval.pass_samples ({self.pass_samples}) must be >= eval.pass_at_k ({self.pass_at_k})")
        return self

    @property
    def samples(self) -> Optional[int]:
        """Responses per prompt of the pass@k runs (None: no pass@k)."""
        if self.pass_at_k is None:
            return None
        return self.pass_samples or self.pass_at_k


#: ``HOST:PORT`` of a torchrun rendezvous (a bracketed IPv6 host is accepted).
_ENDPOINT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-]*):[0-9]{1,5}$")


class LaunchConfig(_Strict):
    """How processes are started: the SFT stage's torchrun ranks, extra loggers, extra environment, and the size of
    the validation-only runs' batches.

    SFT on several nodes (``sft_nnodes > 1``, which must match the SFT profile's ``trainer.nnodes``):

    * ``sft_launcher: torchrun``: one ``torchrun`` per node with a c10d rendezvous at ``sft_rdzv_endpoint``
      (``HOST:PORT``; when unset, ``$MASTER_ADDR:$MASTER_PORT`` of the environment the command runs in). The runner
      starts it on its own node; the same command must be started on every other node (torchrun assigns node ranks).
    * ``sft_launcher: srun``: ``srun --nodes=N --ntasks-per-node=1`` starts that torchrun on every node of the
      current Slurm allocation; the rendezvous defaults to the allocation's first node, port 29500.

    ``val_batch_responses``: at most this many responses (prompts x samples per prompt) per batch of the sweep's and
    the evaluation's validation runs (``data.val_batch_size`` = this // samples per prompt): verl otherwise takes the
    whole set as one batch and holds every row's pixel values on the driver.
    """

    sft_nproc_per_node: int = Field(8, ge=1)
    sft_nnodes: int = Field(1, ge=1)
    sft_launcher: Literal["torchrun", "srun"] = "torchrun"
    sft_rdzv_endpoint: Optional[str] = None
    val_batch_responses: int = Field(1024, ge=1)
    python: Optional[str] = None
    loggers: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("sft_rdzv_endpoint")
    @classmethod
    def _endpoint(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _ENDPOINT_RE.match(value):
            raise ValueError(f"{value!r} is not HOST:PORT (e.g. node001:29500)")
        return value


class RunConfig(_Strict):
    """The whole ``verl-rise run`` configuration (see the module docstring)."""

    run_dir: Path
    model: Path
    data: DataConfig
    expert: ExpertConfig = Field(default_factory=ExpertConfig)
    profiles: Profiles = Field(default_factory=Profiles)
    recipes_dir: Optional[Path] = None
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    launch: LaunchConfig = Field(default_factory=LaunchConfig)
    overrides: dict[Literal["rl", "sweep", "sft", "eval", "export", "sft_data"], list[str]] = Field(
        default_factory=dict
    )

    @field_validator("overrides")
    @classmethod
    def _override_syntax(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for stage, items in value.items():
            if stage not in HYDRA_STAGES:
                continue
            for item in items:
                if not _OVERRIDE_RE.match(item):
                    raise ValueError(f"overrides.{stage}: {item!r} is not a Hydra override (key=value, +key=value, "
                                     f"~key)")
        return value

    def stage_overrides(self, stage: str) -> list[str]:
        """The overrides (or extra options) given for ``stage``; empty when none."""
        return list(self.overrides.get(stage, []))

    @property
    def recipes(self) -> Path:
        """The recipes directory: ``recipes_dir`` or the installed ``verl_rise.recipes``."""
        if self.recipes_dir is not None:
            return self.recipes_dir
        import verl_rise.recipes as r

        return Path(r.RECIPES_DIR)


def _resolve_paths(raw: dict, base: Path) -> dict:
    """Make every path field of the raw YAML mapping absolute (relative to ``base``)."""

    def fix(value):
        if value is None:
            return None
        p = Path(str(value)).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    out = dict(raw)
    for key in ("run_dir", "model", "recipes_dir"):
        if key in out:
            out[key] = fix(out[key])
    data = out.get("data")
    if isinstance(data, dict):
        data = dict(data)
        if "train" in data:
            data["train"] = fix(data["train"])
        if isinstance(data.get("held_out"), dict):
            data["held_out"] = {k: fix(v) for k, v in data["held_out"].items()}
        out["data"] = data
    expert = out.get("expert")
    if isinstance(expert, dict):
        expert = dict(expert)
        if isinstance(expert.get("files"), list):
            expert["files"] = [fix(f) for f in expert["files"]]
        if expert.get("image_root") is not None:
            expert["image_root"] = fix(expert["image_root"])
        out["expert"] = expert
    ev = out.get("eval")
    if isinstance(ev, dict) and isinstance(ev.get("benchmarks"), dict):
        out["eval"] = {**ev, "benchmarks": {k: fix(v) for k, v in ev["benchmarks"].items()}}
    return out


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid run configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_config(raw: dict, base_dir: Path, source: str = "<config>") -> RunConfig:
    """Validate a raw mapping (paths relative to ``base_dir``) into a :class:`RunConfig`.

    Raises:
        ConfigError: unknown or missing keys, wrong types or values; the message lists each field.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the run configuration must be a YAML mapping, got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(_resolve_paths(raw, base_dir))
    except ValidationError as exc:
        raise ConfigError(_format_errors(Path(source), exc)) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a run configuration YAML file.

    Args:
        path: the YAML file; relative paths inside it are relative to its directory.

    Returns:
        The validated :class:`RunConfig` with absolute paths.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not validate (message names file and fields).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"run configuration not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw, path.resolve().parent, source=str(path))


def dump_config(config: RunConfig) -> str:
    """The configuration as YAML with absolute paths (written to the run directory)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
