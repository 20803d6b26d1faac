"""Checks of verl-rise's Hydra recipes against verl 0.9.1's own config schema, without starting anything.

Hydra merges a recipe file into verl's config without complaint even when a key is misspelt (a config file may add
keys; only the command line needs ``+``), so a typo such as ``clip_ratio_hgih`` would silently leave verl's default
in force. This module reads the YAML files themselves (each recipe plus the recipes its ``defaults`` list pulls in)
and compares every key path they set with verl's composed config of that trainer (:func:`unknown_keys`), except the
documented :data:`ALLOWED_ADDED_KEYS` / :data:`FREE_FORM_DICTS`; composes recipes and profiles as ``main_ppo`` and
the SFT trainer would (:func:`compose_recipe`, :func:`compose_profile`); and runs what verl's SFT trainer runs before
it needs a GPU (:func:`run_sft_startup_validation`; the RL side is :mod:`verl_rise.verl_ext.startup_checks`). Value
types are checked by :mod:`verl_rise.verl_ext.value_types`.

Two kinds of recipe exist: the RL stage (composed on verl's ``ppo_trainer``) and the SFT stage (on
``sft_trainer_engine``); which one a recipe is follows from the verl config its ``defaults`` chain includes
(:func:`verl_root`).
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import DictConfig

VERL_SEARCHPATH = "pkg://verl.trainer.config"

#: The verl configs a recipe can be composed on (verl/trainer/config/<name>.yaml).
PPO_ROOT, SFT_ROOT = "ppo_trainer", "sft_trainer_engine"

#: Keys absent from verl's ppo_trainer YAML that verl nevertheless reads. Each is a field of the dataclass named by
#: its parent's ``_target_`` (test_allow_list_is_not_stale checks that, so the list cannot hide a typo).
PPO_ALLOWED_ADDED_KEYS = {
    "actor_rollout_ref.rollout.limit_images": (
        "RolloutConfig.limit_images (workers/config/rollout.py), passed to vLLM as limit_mm_per_prompt by "
        "workers/rollout/vllm_rollout/vllm_async_server.py launch_server; missing from verl's rollout.yaml"
    ),
}

#: Dict-valued options whose own keys verl passes through unchecked: any key below these paths is accepted.
PPO_FREE_FORM_DICTS = {
    "actor_rollout_ref.model.override_config": "HF config overrides (HFModelConfig.override_config: dict)",
    "actor_rollout_ref.rollout.engine_kwargs.vllm": "extra vLLM engine arguments (vllm_async_server.py)",
    "ray_kwargs.ray_init": "keyword arguments of ray.init (trainer/main_ppo.py run_ppo)",
    "reward.custom_reward_function.reward_kwargs": "extra compute_score kwargs (trainer/ppo/reward.py)",
    "data.mm_processor_kwargs": "multimodal processor kwargs (utils/dataset/rl_dataset.py)",
    "actor_rollout_ref.actor.fsdp_config.mixed_precision": (
        "FSDPEngineConfig.mixed_precision (dict, absent from verl's YAML): param/reduce/buffer dtype read by "
        "workers/engine/fsdp/transformer_impl.py:391-395"
    ),
    "actor_rollout_ref.ref.fsdp_config.mixed_precision": "as actor_rollout_ref.actor.fsdp_config.mixed_precision",
    "actor_rollout_ref.rollout.engine_kwargs.hf": "verl-rise hf rollout engine options (verl_rise/verl_ext/hf_rollout/server.py)",
    "trainer.v1.sampler.sampler_kwargs": (
        "keyword arguments of the custom sampler (trainer/ppo/v1/trainer_base.py:160 passes the node as "
        "sampler_kwargs); verl-rise's pass-rate tracker reads its `passrate` block (verl_rise/passrate/recorder.py "
        "PassRateConfig, which rejects unknown keys)"
    ),
}

#: Keys absent from verl's sft_trainer_engine YAML (its ``data`` section is a plain dict, no dataclass) that the
#: dataset class reads: path -> (the object that reads it, a snippet of its source that reads it). The staleness
#: test checks both, so the list cannot hide a typo or a key nobody reads any more.
SFT_ALLOWED_ADDED_KEYS = {
    "data.image_key": (
        "verl.utils.dataset.multiturn_sft_dataset.MultiTurnSFTDataset", 'config.get("image_key"',
    ),
    "data.mm_processor_kwargs.min_pixels": ("verl_rise.verl_ext.sft_dataset.pixel_range", "mm_processor_kwargs"),
    "data.mm_processor_kwargs.max_pixels": ("verl_rise.verl_ext.sft_dataset.pixel_range", "mm_processor_kwargs"),
    # Fields of the engine config class rise_sft.yaml names (engine._target_), read by the FSDP engine hook.
    "engine.freeze_vision_tower": ("verl_rise.verl_ext.vision_freeze.patch_engine_build_module", '"freeze_vision_tower"'),
    "engine.freeze_multi_modal_projector": (
        "verl_rise.verl_ext.vision_freeze.patch_engine_build_module", '"freeze_multi_modal_projector"',
    ),
}

SFT_FREE_FORM_DICTS = {
    "model.override_config": "HF config overrides (HFModelConfig.override_config: dict)",
    "engine.mixed_precision": (
        "FSDPEngineConfig.mixed_precision (dict, absent from verl's YAML): param/reduce/buffer dtype read by "
        "workers/engine/fsdp/transformer_impl.py:391-395"
    ),
}

ALLOWED_ADDED_KEYS = {PPO_ROOT: PPO_ALLOWED_ADDED_KEYS, SFT_ROOT: SFT_ALLOWED_ADDED_KEYS}
FREE_FORM_DICTS = {PPO_ROOT: PPO_FREE_FORM_DICTS, SFT_ROOT: SFT_FREE_FORM_DICTS}


# --------------------------------------------------------------------------------------------------------------
# Reading the recipe files
# --------------------------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict:
    """A recipe file as a dict (an empty file is {}). Raises ValueError when it is not a YAML mapping."""
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
    return data


def recipe_names(recipes_dir: Path) -> list[str]:
    """Names (file stems) of every ``*.yaml`` recipe in ``recipes_dir``, sorted."""
    return sorted(p.stem for p in recipes_dir.glob("*.yaml"))


def included_recipes(recipes_dir: Path, name: str) -> list[str]:
    """The recipes of ``recipes_dir`` named in ``name``'s ``defaults`` list (verl groups and ``_self_`` skipped)."""
    defaults = load_yaml(recipes_dir / f"{name}.yaml").get("defaults", []) or []
    own = set(recipe_names(recipes_dir))
    return [entry for entry in defaults if isinstance(entry, str) and entry in own]


def defaults_chain(recipes_dir: Path, name: str) -> list[str]:
    """``name`` followed by every recipe its ``defaults`` pull in, depth-first, each once."""
    chain: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        if current in chain:
            continue
        chain.append(current)
        stack.extend(reversed(included_recipes(recipes_dir, current)))
    return chain


def base_recipes(recipes_dir: Path) -> set[str]:
    """Recipes that another recipe includes: building blocks, not run on their own."""
    return {inc for name in recipe_names(recipes_dir) for inc in included_recipes(recipes_dir, name)}


def profiles(recipes_dir: Path) -> list[str]:
    """Runnable recipes: those no other recipe includes."""
    bases = base_recipes(recipes_dir)
    return [name for name in recipe_names(recipes_dir) if name not in bases]


def verl_root(recipes_dir: Path, name: str) -> str:
    """The verl config (``ppo_trainer`` or ``sft_trainer_engine``) that ``name``'s defaults chain composes on.

    Raises:
        ValueError: none of them, or both.
    """
    roots = set()
    for recipe in defaults_chain(recipes_dir, name):
        defaults = load_yaml(recipes_dir / f"{recipe}.yaml").get("defaults", []) or []
        roots |= {entry for entry in defaults if entry in (PPO_ROOT, SFT_ROOT)}
    if len(roots) != 1:
        raise ValueError(f"{name}.yaml must compose on exactly one of {PPO_ROOT}/{SFT_ROOT}, found {sorted(roots)}")
    return roots.pop()


def leaf_paths(node: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf of a parsed YAML mapping (an empty mapping counts as a leaf)."""
    paths = []
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            paths.extend(leaf_paths(value, path))
        else:
            paths.append(path)
    return paths


def set_key_paths(recipes_dir: Path, name: str) -> dict[str, str]:
    """Every key path set by ``name`` and the recipes it includes -> the file that sets it.

    ``defaults`` and ``hydra`` are Hydra directives, not verl config, and are left out.
    """
    paths: dict[str, str] = {}
    for recipe in defaults_chain(recipes_dir, name):
        data = {k: v for k, v in load_yaml(recipes_dir / f"{recipe}.yaml").items() if k not in ("defaults", "hydra")}
        for path in leaf_paths(data):
            paths.setdefault(path, f"{recipe}.yaml")
    return paths


# --------------------------------------------------------------------------------------------------------------
# verl's schema
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def verl_reference(root: str = PPO_ROOT) -> DictConfig:
    """verl's own composed ``root`` config (``ppo_trainer`` / ``sft_trainer_engine``), the schema our keys must
    exist in."""
    import verl.trainer.config

    with initialize_config_dir(config_dir=str(Path(verl.trainer.config.__file__).parent), version_base=None):
        return compose(config_name=root)


def node_at(cfg: DictConfig, path: str):
    """The node at dotted ``path`` (unresolved, MISSING allowed), or None when a key on the way is absent."""
    node = cfg
    for part in path.split("."):
        if not isinstance(node, DictConfig) or part not in node.keys():
            return None
        node = node._get_node(part)
    return node


def is_allowed_new(path: str, root: str = PPO_ROOT) -> bool:
    return path in ALLOWED_ADDED_KEYS[root] or any(path.startswith(prefix + ".") for prefix in FREE_FORM_DICTS[root])


def unknown_keys(recipes_dir: Path, name: str) -> list[str]:
    """'file: key.path' for every key set by ``name``'s files that the schema of its verl trainer does not have."""
    root = verl_root(recipes_dir, name)
    reference = verl_reference(root)
    return sorted(
        f"{source}: {path}"
        for path, source in set_key_paths(recipes_dir, name).items()
        if node_at(reference, path) is None and not is_allowed_new(path, root)
    )


def dataclass_field_type(path: str, root: str = PPO_ROOT):
    """(class, field type) when ``path`` is a direct field of a verl dataclass section of ``root``, else None."""
    parent_path, _, field_name = path.rpartition(".")
    parent = node_at(verl_reference(root), parent_path) if parent_path else None
    if not isinstance(parent, DictConfig) or "_target_" not in parent.keys():
        return None
    cls = get_class(parent._target_)
    hints = typing.get_type_hints(cls)
    return (cls, hints[field_name]) if field_name in hints else None


# --------------------------------------------------------------------------------------------------------------
# Composing
# --------------------------------------------------------------------------------------------------------------


def compose_recipe(recipes_dir: Path, name: str, overrides: typing.Sequence[str] = ()) -> DictConfig:
    """Compose ``name`` as ``main_ppo --config-path recipes_dir --config-name name overrides`` would.

    A base recipe declares no search path (Hydra refuses one outside the primary config), so it gets verl's on
    the command line, as the base recipe's header tells users to do.
    """
    extra = [f"hydra.searchpath=[{VERL_SEARCHPATH}]"] if name in base_recipes(recipes_dir) else []
    with initialize_config_dir(config_dir=str(recipes_dir), version_base=None):
        return compose(config_name=name, overrides=[*extra, *overrides])


def compose_profile(recipes_dir: Path, name: str, placeholders: dict[str, dict[str, str]],
                    overrides: typing.Sequence[str] = ()) -> DictConfig:
    """A runnable profile with the user-supplied paths filled in: ``placeholders[verl root] = {key: value}``."""
    placeholders = placeholders[verl_root(recipes_dir, name)]
    return compose_recipe(recipes_dir, name, [f"{k}={v}" for k, v in placeholders.items()] + list(overrides))


@dataclasses.dataclass
class SFTStartup:
    """What :func:`run_sft_startup_validation` built: verl's config objects, the dataset, its samples, one batch."""

    model: typing.Any
    engine: typing.Any
    optim: typing.Any
    engine_cls: type
    dataset: typing.Any
    samples: list
    batch: dict


def run_sft_startup_validation(cfg: DictConfig) -> SFTStartup:
    """Run what ``torchrun -m verl.trainer.sft_trainer`` runs before it needs a GPU or a process group.

    Mirrors verl/trainer/sft_trainer.py: ``main`` (auto_set_device), ``SFTTrainer._build_config``
    (omega_conf_to_dataclass of model, engine, optim, checkpoint and profiler, then ``_validate_profiler_interval``),
    the engine lookup of ``TrainingWorker`` (``EngineRegistry`` by ``engine.strategy``), ``_build_dataset``
    (``create_sft_dataset`` on ``data.train_files`` with the model's tokenizer and processor) and the collator of
    ``_build_dataloader`` on every sample. Raises whatever verl raises.
    """
    from verl.trainer.sft_trainer import SFTTrainer, create_sft_dataset
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.dataset.dataset_utils import SFTTensorCollator
    from verl.utils.device import auto_set_device
    from verl.workers.engine import EngineRegistry

    cfg = cfg.copy()
    auto_set_device(cfg)
    model = omega_conf_to_dataclass(cfg.model)
    engine = omega_conf_to_dataclass(cfg.engine)
    optim = omega_conf_to_dataclass(cfg.optim)
    omega_conf_to_dataclass(cfg.checkpoint)
    omega_conf_to_dataclass(cfg.profiler)
    # SFTTrainer.__init__ needs torch.distributed; its interval check needs only this attribute.
    trainer = SFTTrainer.__new__(SFTTrainer)
    trainer.profiler_interval = cfg.trainer.profile_interval
    trainer._validate_profiler_interval()
    engine_cls = EngineRegistry.get_engine_cls("language_model", engine.strategy)
    dataset = create_sft_dataset(cfg.data.train_files, cfg.data, model.tokenizer, model.processor,
                                 max_samples=cfg.data.get("train_max_samples", -1))
    samples = [dataset[i] for i in range(len(dataset))]
    batch = SFTTensorCollator(cfg.data.pad_mode)(samples)
    return SFTStartup(model, engine, optim, engine_cls, dataset, samples, batch)
