"""Checks run before any stage starts (and before ``--dry-run`` prints): nothing here needs a GPU or starts Ray.

* files: the model directory (with ``config.json``), the training and held-out parquet files (with the columns
  data_prep writes and at least one row), expert files and their image root, the recipes and the two profiles;
* overrides: no override of a key the runner sets itself (paths, loggers, resume mode, the sweep's sampling);
* recipes: every Hydra command of the plan is composed exactly as it will run, against verl's own config
  (``main_ppo``'s ``ppo_trainer``, the SFT trainer's ``sft_trainer_engine``): an unknown key, a missing config
  group or a bad value fails here; every value going into one of verl's config dataclasses must fit the field's
  annotation (``optim.lr=abc`` is refused: :mod:`verl_rise.verl_ext.value_types`). The RL-side configs then go
  through what verl runs before it touches a GPU (``validate_config``, the v1 trainer's constructor, the workers'
  dataclass conversions); the SFT config through the dataclass conversions of ``SFTTrainer._build_config``. Paths
  the schedule has not produced yet (the merged RL and SFT models) are stood in for by the base model, which has
  the same architecture and processor;
* the training stages save checkpoints (``trainer.save_freq``), which the merge stages need;
* devices: a GPU profile on a machine without enough GPUs is refused (except for ``--dry-run``);
* nodes: the SFT launch (``launch.sft_nnodes``) must match the SFT profile's ``trainer.nnodes`` (verl's SFT trainer
  takes its world size from torchrun, not from the profile: a 4-node profile started on one node runs out of memory);
* data against the profiles: images per row (train and held-out files) against the rollout's ``limit_images``
  (vLLM refuses a prompt with more); the SFT profile's ``max_length`` and pixel range go to the SFT-set build, which
  rejects longer rows, and to the SFT step's precheck;
* expert source: a warning when none is configured (the error comes when the export shows hard prompts).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from verl_rise.schedule.config import RunConfig
from verl_rise.schedule.plan import (
    Deferred,
    PlanOptions,
    Stage,
    build_plan,
    owned_override_keys,
)
from verl_rise.verl_commands import override_key
from verl_rise.verl_ext.registry import failed_requests
from verl_rise.verl_ext.startup_checks import (
    shared_tokenizer_loads,
    verl_ppo_startup_checks,
    verl_sft_startup_checks,
)

#: Columns every RL parquet written by data_prep has (verl's RLHFDataset reads them).
RL_COLUMNS = ("data_source", "prompt", "reward_model", "extra_info")


@dataclass
class PreflightResult:
    """Errors (the run must not start), warnings, and the plan options found by composing the RL recipe."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    options: PlanOptions = PlanOptions()

    @property
    def ok(self) -> bool:
        return not self.errors


def _check_parquet(path: Path, what: str, errors: list[str]) -> None:
    import pyarrow.parquet as pq

    if not path.is_file():
        errors.append(f"{what}: file not found: {path}")
        return
    try:
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        errors.append(f"{what}: {path} is not a readable parquet file ({exc})")
        return
    missing = [c for c in RL_COLUMNS if c not in schema.names]
    if missing:
        errors.append(f"{what}: {path} lacks the columns {missing} (write it with python -m data_prep.*)")
        return
    extra = schema.field("extra_info").type
    names = [extra.field(i).name for i in range(extra.num_fields)] if hasattr(extra, "num_fields") else []
    if "prompt_id" not in names:
        errors.append(f"{what}: {path}: extra_info has no prompt_id (pass rates are keyed on it; write the file "
                      f"with python -m data_prep.*)")
    if meta.num_rows == 0:
        errors.append(f"{what}: {path} has no rows")


def _check_benchmark_parquet(key: str, path: Path, errors: list[str]) -> None:
    """A converted benchmark (``eval.benchmarks.KEY``): our RL columns, ``extra_info.{benchmark,index,vlmeval}`` and
    a data_source of that benchmark (the eval stage joins verl's dumps to the rows by benchmark and index)."""
    import pyarrow.parquet as pq

    from verl_rise.evaluation import benchmark_of

    what = f"eval.benchmarks.{key}"
    before = len(errors)
    _check_parquet(path, what, errors)
    if len(errors) > before:
        return
    extra = pq.read_schema(path).field("extra_info").type
    names = {extra.field(i).name for i in range(extra.num_fields)} if hasattr(extra, "num_fields") else set()
    if not {"benchmark", "index", "vlmeval"} <= names:
        errors.append(f"{what}: {path}: extra_info lacks benchmark/index/vlmeval (convert the benchmark with "
                      f"python -m data_prep.benchmarks)")
        return
    sources = set(pq.read_table(path, columns=["data_source"]).column("data_source").to_pylist())
    wrong = sorted(str(s) for s in sources if benchmark_of(s) != key)
    if wrong:
        errors.append(f"{what}: {path} holds rows of data_source {wrong}, not {key}")


def _check_files(config: RunConfig, errors: list[str], warnings: list[str]) -> None:
    model = config.model
    if not model.is_dir():
        errors.append(f"model: directory not found: {model}")
    elif not (model / "config.json").is_file():
        errors.append(f"model: {model} has no config.json (a Hugging Face model directory is expected)")
    _check_parquet(config.data.train, "data.train", errors)
    for name, path in config.data.held_out.items():
        _check_parquet(path, f"data.held_out.{name}", errors)
    for key, path in config.eval.benchmarks.items():
        _check_benchmark_parquet(key, path, errors)
    for f in config.expert.files:
        if not f.is_file():
            errors.append(f"expert.files: file not found: {f}")
    if config.expert.image_root is not None and not config.expert.image_root.is_dir():
        errors.append(f"expert.image_root: directory not found: {config.expert.image_root}")
    if not config.expert.configured:
        warnings.append("no expert source (expert.files / expert.endpoint): the schedule stops before the SFT set "
                        "if the sweep finds hard prompts (pass rate 0)")
    recipes = config.recipes
    if not recipes.is_dir():
        errors.append(f"recipes_dir: directory not found: {recipes}")
        return
    for stage, name in (("rl", config.profiles.rl), ("sft", config.profiles.sft)):
        if not (recipes / f"{name}.yaml").is_file():
            available = sorted(p.stem for p in recipes.glob("*.yaml"))
            errors.append(f"profiles.{stage}: recipe {name}.yaml not found in {recipes} (available: {available})")


def _check_override_keys(config: RunConfig, errors: list[str]) -> None:
    for stage, keys in owned_override_keys(build_plan(config)).items():
        for item in config.stage_overrides(stage):
            if override_key(item) in keys:
                errors.append(f"overrides.{stage}: {item!r} sets {override_key(item)}, which the runner sets itself "
                              f"(see the config's run_dir/data/model/sweep/eval fields)")


def hydra_call(argv: list) -> tuple[str, str, list[str]]:
    """``(config_dir, config_name, overrides)`` of a Hydra command line (``--config-path D --config-name N ...``)."""
    words = [a.shell if isinstance(a, Deferred) else a for a in argv]
    i = words.index("--config-path")
    j = words.index("--config-name")
    return words[i + 1], words[j + 1], words[j + 2:]


def compose(config_dir: str, name: str, overrides: list[str]):
    """Compose a recipe as ``--config-path config_dir --config-name name overrides`` would (Hydra).

    Raises:
        Exception: whatever Hydra raises (unknown key, missing group, bad override syntax, ...).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return hydra_compose(config_name=name, overrides=overrides)


def _stand_in(overrides: list[str], base_model: Path, keys: tuple[str, ...]) -> list[str]:
    """Point model paths the schedule has not produced yet at the base model (same architecture and processor)."""
    out = []
    for item in overrides:
        key = override_key(item)
        out.append(f"{key}={base_model}" if key in keys and not item.startswith(("+", "~")) else item)
    return out


def _save_freq_ok(value) -> bool:
    if isinstance(value, str):
        return value == "after_each_epoch"
    return value is not None and int(value) > 0


def _cpu_profile(cfg) -> bool:
    env = (((cfg.get("ray_kwargs") or {}).get("ray_init") or {}).get("runtime_env") or {}).get("env_vars") or {}
    return env.get("VERL_PLATFORM") == "cpu"


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken CUDA setup counts as none
        return 0


def _check_devices(rl_cfg, errors: list[str], warnings: list[str]) -> None:
    if _cpu_profile(rl_cfg):
        return
    available = _gpu_count()
    per_node = int(rl_cfg.trainer.n_gpus_per_node)
    nnodes = int(rl_cfg.trainer.nnodes)
    if nnodes > 1:
        warnings.append(f"the RL profile asks for {nnodes} nodes x {per_node} GPUs: run it on a Ray cluster "
                        f"(see the README); this machine's GPUs are not checked")
    elif available < per_node:
        errors.append(f"the RL profile asks for {per_node} GPUs and this machine has {available}: use a CPU profile "
                      f"(profiles.rl: rise_grpo_cpu_tiny) or a GPU node, or print the commands with --dry-run")


def check_value_types(label: str, cfg, errors: list[str]) -> bool:
    """Check the values of a composed config against the types of verl's config dataclasses (as Hydra checks keys).

    Appends ``stage <label>: <key>=<value> is a <type>; verl's <Class>.<field> is a <type>`` to ``errors`` per
    bad value (:mod:`verl_rise.verl_ext.value_types`); a message another stage already gave (the RL overrides
    also go into the sweep and eval runs) gets this stage added to its label instead. Returns True when all fit.
    """
    from verl_rise.verl_ext.value_types import value_type_errors

    found = value_type_errors(cfg)
    for message in found:
        for i, existing in enumerate(errors):
            labels, sep, body = existing.partition(": ")
            if sep and body == message and labels.startswith("stage"):
                errors[i] = f"{labels.replace('stage ', 'stages ', 1)}, {label}: {message}"
                break
        else:
            errors.append(f"stage {label}: {message}")
    return not found


def check_sft_launch(config: RunConfig, sft_cfg, errors: list[str], warnings: list[str],
                     device_check: bool) -> None:
    """The SFT launch against the SFT profile's size (``trainer.nnodes`` x ``trainer.n_gpus_per_node``).

    Errors: the profile is sized for another number of nodes than ``launch.sft_nnodes`` (the FSDP states, sharded
    over fewer GPUs, would not fit: rise_sft_72b's 1.17 TB of states on one node); too few GPUs on this machine for a
    one-node GPU launch (with ``device_check``). Warning: another number of ranks per node than the profile's.
    """
    launch = config.launch
    name = config.profiles.sft
    nnodes, per_node = int(sft_cfg.trainer.nnodes), int(sft_cfg.trainer.n_gpus_per_node)
    if nnodes != launch.sft_nnodes:
        errors.append(
            f"stage sft: the SFT profile {name} is sized for trainer.nnodes={nnodes} x {per_node} GPUs but the run "
            f"configuration launches it on launch.sft_nnodes={launch.sft_nnodes} node(s) (verl's SFT trainer takes "
            f"its world size from torchrun, not from trainer.nnodes): set launch.sft_nnodes: {nnodes} with "
            f"launch.sft_launcher: srun (inside a Slurm allocation) or torchrun plus launch.sft_rdzv_endpoint "
            f"(HOST:PORT; then start the printed SFT command on every node), or use a profile sized for "
            f"{launch.sft_nnodes} node(s)")
    if per_node != launch.sft_nproc_per_node:
        warnings.append(f"stage sft: the SFT profile {name} is sized for {per_node} GPUs per node and "
                        f"launch.sft_nproc_per_node is {launch.sft_nproc_per_node}: memory per GPU differs from the "
                        f"profile's arithmetic")
    if device_check and sft_cfg.trainer.get("device") != "cpu" and launch.sft_nnodes == 1:
        available = _gpu_count()
        if available < launch.sft_nproc_per_node:
            errors.append(f"stage sft: launch.sft_nproc_per_node={launch.sft_nproc_per_node} GPU ranks and this "
                          f"machine has {available} GPUs: use a CPU profile (profiles.sft: rise_sft_cpu_tiny) or a "
                          f"GPU node, or print the commands with --dry-run")


def max_images_per_row(path: Path, image_key: str = "images") -> tuple[int, int]:
    """``(most images in one row, index of the first such row)`` of an RL parquet file; ``(0, -1)`` without images.

    Only the image paths are read (a nested column), not the image bytes.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    if image_key not in pf.schema_arrow.names:
        return 0, -1
    element = pf.schema_arrow.field(image_key).type
    # The narrowest sub-column: a struct image ({bytes, path}) is read through its path, a plain list as is.
    value = getattr(element, "value_type", None)
    columns = [f"{image_key}.list.element.{value.field(0).name}"] if hasattr(value, "num_fields") and \
        value.num_fields else [image_key]
    lengths = pc.fill_null(pc.list_value_length(pf.read(columns=columns).column(image_key)), 0)
    if len(lengths) == 0:
        return 0, -1
    most = pc.max(lengths).as_py() or 0
    return most, (pc.index(lengths, most).as_py() if most else -1)


def check_images_per_row(config: RunConfig, rl_cfg, errors: list[str]) -> None:
    """Rows with more images than the rollout allows (``actor_rollout_ref.rollout.limit_images``, vLLM's
    ``limit_mm_per_prompt``): vLLM rejects such a prompt mid-run. Checks the training and held-out files."""
    limit = rl_cfg.actor_rollout_ref.rollout.get("limit_images")
    if limit is None:
        return
    image_key = rl_cfg.data.get("image_key") or "images"
    files = [("data.train", config.data.train), *((f"data.held_out.{k}", v) for k, v in config.data.held_out.items())]
    for what, path in files:
        most, row = max_images_per_row(path, image_key)
        if most > int(limit):
            errors.append(f"{what}: {path} row {row} has {most} images and the RL profile {config.profiles.rl} sets "
                          f"actor_rollout_ref.rollout.limit_images={limit} (vLLM refuses a prompt with more): raise "
                          f"it in overrides.rl (e.g. actor_rollout_ref.rollout.limit_images={most}; vLLM then "
                          f"reserves memory for {most} images per prompt) or drop those rows")


def _sft_pixels(sft_cfg) -> Optional[tuple[int, int]]:
    kwargs = sft_cfg.data.get("mm_processor_kwargs") or {}
    if kwargs.get("min_pixels") is None or kwargs.get("max_pixels") is None:
        return None
    return int(kwargs["min_pixels"]), int(kwargs["max_pixels"])


@contextlib.contextmanager
def _quiet():
    """Hide what verl prints while validating ("All configuration checks passed", engine availability warnings):
    the pre-flight reports its own findings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def _compose_checks(config: RunConfig, stages: list[Stage], result: PreflightResult, device_check: bool) -> None:
    with shared_tokenizer_loads():  # every stage's checks load the same tokenizer: once is enough
        _compose_and_check(config, stages, result, device_check)


def _compose_and_check(config: RunConfig, stages: list[Stage], result: PreflightResult, device_check: bool) -> None:
    by_name = {s.name: s for s in stages}
    model_keys = ("actor_rollout_ref.model.path",)
    rl_cfg = None
    ppo_steps = [("rl", by_name["rl"].steps[0])] + [("sweep", by_name["sweep"].steps[0])] + [
        (f"eval/{s.name}", s) for s in by_name["eval"].steps if s.name != "collect"]
    for label, step in ppo_steps:
        config_dir, name, overrides = hydra_call(step.argv)
        overrides = _stand_in(overrides, config.model, model_keys)
        try:
            cfg = compose(config_dir, name, overrides)
        except Exception as exc:
            result.errors.append(f"stage {label}: recipe {name} does not compose with its overrides: {exc}")
            continue
        if label == "rl":
            rl_cfg = cfg
        result.errors.extend(f"stage {label}: {problem}" for problem in failed_requests(cfg))
        if not check_value_types(label, cfg, result.errors):
            continue  # verl's checks would only fail on the same values, less clearly
        try:
            verl_ppo_startup_checks(cfg)
        except Exception as exc:
            result.errors.append(f"stage {label}: verl rejects the configuration of {name}: "
                                 f"{type(exc).__name__}: {exc}")
    if rl_cfg is not None:
        if not _save_freq_ok(rl_cfg.trainer.save_freq):
            result.errors.append(f"stage rl: trainer.save_freq={rl_cfg.trainer.save_freq} saves no checkpoint; "
                                 f"merge_rl needs one (set it > 0)")
        result.options = PlanOptions(rl_validates_at_end=int(rl_cfg.trainer.test_freq) > 0)
        if device_check:
            _check_devices(rl_cfg, result.errors, result.warnings)
        check_images_per_row(config, rl_cfg, result.errors)
    sft_step = by_name["sft"].steps[0]
    config_dir, name, overrides = hydra_call(sft_step.argv)
    overrides = _stand_in(overrides, config.model, ("model.path",))
    try:
        sft_cfg = compose(config_dir, name, overrides)
    except Exception as exc:
        result.errors.append(f"stage sft: recipe {name} does not compose with its overrides: {exc}")
        return
    if sft_cfg.trainer.get("device") == "cpu":
        result.options = replace(result.options, sft_platform="cpu")
    check_value_types("sft", sft_cfg, result.errors)
    result.options = replace(result.options, sft_max_length=int(sft_cfg.data.max_length),
                             sft_pixels=_sft_pixels(sft_cfg))
    check_sft_launch(config, sft_cfg, result.errors, result.warnings, device_check)
    try:
        verl_sft_startup_checks(sft_cfg)
    except Exception as exc:
        result.errors.append(f"stage sft: verl rejects the configuration of {name}: {type(exc).__name__}: {exc}")
    if not _save_freq_ok(sft_cfg.trainer.save_freq) and sft_cfg.trainer.get("total_training_steps") is None:
        result.errors.append(f"stage sft: trainer.save_freq={sft_cfg.trainer.save_freq} saves no checkpoint; "
                             f"merge_sft needs one")


def preflight(config: RunConfig, *, compose_recipes: bool = True, device_check: bool = True) -> PreflightResult:
    """Check a run configuration before anything runs (see the module docstring).

    Args:
        config: the validated configuration.
        compose_recipes: compose every Hydra command and run verl's start-up checks on it (a few seconds).
        device_check: refuse GPU profiles on a machine without enough GPUs (off for ``--dry-run``).

    Returns:
        :class:`PreflightResult`; ``options`` feed :func:`~verl_rise.schedule.plan.build_plan`.
    """
    result = PreflightResult()
    _check_files(config, result.errors, result.warnings)
    _check_override_keys(config, result.errors)
    if result.errors or not compose_recipes:
        return result
    stages = build_plan(config, PlanOptions())
    with _quiet():
        _compose_checks(config, stages, result, device_check)
    if not result.options.rl_validates_at_end and config.eval.reuse_rl_validation:
        result.warnings.append("the RL run does not validate after its last step (trainer.test_freq <= 0): the RL "
                               "model gets its own evaluation run")
    return result


def preflight_and_plan(config: RunConfig, *, device_check: bool = True) -> tuple[PreflightResult, Optional[list]]:
    """:func:`preflight`, then the plan built with the options it found (None when there are errors)."""
    result = preflight(config, device_check=device_check)
    if not result.ok:
        return result, None
    return result, build_plan(config, result.options)
