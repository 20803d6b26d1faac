"""Every Hydra recipe in recipes/ composes against verl 0.9.1's config schema and keeps the Metis-RISE invariants.

Two kinds of recipe live in recipes/: the RL stage (``rise_grpo*``, composed on verl's ``ppo_trainer`` and run with
``main_ppo``) and the SFT stage (``rise_sft*``, composed on verl's ``sft_trainer_engine`` and run with
``torchrun -m verl.trainer.sft_trainer``). Which one a recipe is follows from the verl config its ``defaults``
chain includes (:func:`verl_root`); each is checked against its own trainer's schema.

Hydra merges a recipe file into verl's config without complaint even when a key is misspelt (a config file may add
keys; only the command line needs ``+``), so a typo such as ``clip_ratio_hgih`` would silently leave verl's default
in force. These tests therefore:

1. walk the YAML files themselves (each recipe plus the recipes its ``defaults`` list pulls in) and require every
   key path they set to exist in verl's own composed config of that trainer, except the documented
   ``ALLOWED_ADDED_KEYS`` / ``FREE_FORM_DICTS`` below;
2. check each value set on a field of a verl dataclass section (a node with ``_target_``) against that field's type;
3. for every runnable profile (a recipe no other recipe includes), run what verl runs before it needs a GPU, with the
   placeholder paths filled in (the model path points at the real Qwen2.5-VL processor files in ../shared, which
   HFModelConfig loads):
   - RL: ``validate_config`` (main_ppo.main), ``OmegaConf.resolve`` + the trainer constructor (TaskRunnerV1.run:
     replay buffer / DAPO filter checks), and ``omega_conf_to_dataclass`` on the sections the workers turn into
     dataclasses;
   - SFT: ``auto_set_device`` (sft_trainer.main), ``SFTTrainer._build_config`` (``omega_conf_to_dataclass`` on
     model, engine, optim, checkpoint, profiler; the profile-interval checks), the engine lookup
     ``TrainingWorker`` does, and ``create_sft_dataset`` with the profile's data config on a real MATH-Vision SFT
     row (dataset class, pixel range, chat template and verl's own token sanity check), collated by verl's
     ``SFTTensorCollator``;
4. assert the Metis-RISE invariants of each stage and the sizing relations verl only checks at run time on GPUs.

The recipe list is a glob, so a profile added later is covered automatically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import io
import runpy
import shutil
import sys
import typing
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from verl_rise.verl_ext.startup_checks import verl_ppo_startup_checks

REPO = Path(__file__).resolve().parents[2]
RECIPES_DIR = REPO / "recipes"
PROCESSOR_DIR = (REPO / ".." / "shared" / "models" / "qwen2.5-vl-7b-instruct-processor").resolve()
MATHVISION_DIR = (REPO / ".." / "shared" / "data" / "mathvision").resolve()
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

#: Placeholders for the paths a user must supply; the model path must be a real HF model dir (config + processor)
#: because HFModelConfig loads it during validation.
PLACEHOLDERS = {
    PPO_ROOT: {
        "data.train_files": "/placeholder/rl_train.parquet",
        "data.val_files": "/placeholder/rl_val.parquet",
        "actor_rollout_ref.model.path": str(PROCESSOR_DIR),
    },
    SFT_ROOT: {
        "data.train_files": "/placeholder/sft.parquet",
        "model.path": str(PROCESSOR_DIR),
    },
}

# --------------------------------------------------------------------------------------------------------------
# Reading the recipe files
# --------------------------------------------------------------------------------------------------------------


def _load_yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
    return data


def recipe_names(recipes_dir: Path) -> list[str]:
    """Names (file stems) of every ``*.yaml`` recipe in ``recipes_dir``, sorted."""
    return sorted(p.stem for p in recipes_dir.glob("*.yaml"))


def included_recipes(recipes_dir: Path, name: str) -> list[str]:
    """The recipes of ``recipes_dir`` named in ``name``'s ``defaults`` list (verl groups and ``_self_`` skipped)."""
    defaults = _load_yaml(recipes_dir / f"{name}.yaml").get("defaults", []) or []
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
        defaults = _load_yaml(recipes_dir / f"{recipe}.yaml").get("defaults", []) or []
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
        data = {k: v for k, v in _load_yaml(recipes_dir / f"{recipe}.yaml").items() if k not in ("defaults", "hydra")}
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


def type_errors(cfg: DictConfig, paths: typing.Iterable[str], root: str = PPO_ROOT) -> list[str]:
    """Values in the composed ``cfg`` that do not fit the type of the verl dataclass field they set.

    Uses OmegaConf's own structured-config validation on a one-field probe dataclass, because verl's
    omega_conf_to_dataclass instantiates through Hydra, which passes values through unchecked.
    """
    errors = []
    for path in paths:
        found = dataclass_field_type(path, root)
        if found is None:
            continue
        cls, field_type = found
        field_name = path.rpartition(".")[2]
        probe = dataclasses.make_dataclass("Probe", [(field_name, field_type, dataclasses.field(default=MISSING))])
        value = OmegaConf.select(cfg, path)
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        try:
            OmegaConf.merge(OmegaConf.structured(probe), {field_name: value})
        except Exception as err:  # OmegaConf raises ValidationError and friends
            errors.append(f"{path}={value!r} does not fit {cls.__name__}.{field_name}: {field_type} ({err})")
    return errors


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


def compose_profile(recipes_dir: Path, name: str, overrides: typing.Sequence[str] = ()) -> DictConfig:
    """A runnable profile with the user-supplied paths filled in."""
    placeholders = PLACEHOLDERS[verl_root(recipes_dir, name)]
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


# --------------------------------------------------------------------------------------------------------------
# Tests on the real recipes
# --------------------------------------------------------------------------------------------------------------

ALL_RECIPES = recipe_names(RECIPES_DIR)
PROFILES = profiles(RECIPES_DIR)
RL_RECIPES = [n for n in ALL_RECIPES if verl_root(RECIPES_DIR, n) == PPO_ROOT]
RL_PROFILES = [n for n in PROFILES if n in RL_RECIPES]
SFT_RECIPES = [n for n in ALL_RECIPES if verl_root(RECIPES_DIR, n) == SFT_ROOT]
SFT_PROFILES = [n for n in PROFILES if n in SFT_RECIPES]


def test_recipe_layout():
    assert {"rise_grpo", "rise_grpo_7b", "rise_grpo_72b", "rise_grpo_cpu_tiny"} <= set(RL_RECIPES)
    assert {"rise_sft", "rise_sft_7b", "rise_sft_72b", "rise_sft_cpu_tiny"} <= set(SFT_RECIPES)
    assert sorted(RL_RECIPES + SFT_RECIPES) == ALL_RECIPES
    assert {"rise_grpo", "rise_sft"} <= base_recipes(RECIPES_DIR)
    for name in RL_PROFILES:
        assert included_recipes(RECIPES_DIR, name)[:1] == ["rise_grpo"], f"{name}.yaml must start from rise_grpo"
    for name in SFT_PROFILES:
        assert included_recipes(RECIPES_DIR, name)[:1] == ["rise_sft"], f"{name}.yaml must start from rise_sft"


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_search_path_only_in_profiles(name):
    """Hydra only honours (and only accepts) hydra.searchpath in the primary config."""
    searchpath = (_load_yaml(RECIPES_DIR / f"{name}.yaml").get("hydra") or {}).get("searchpath")
    if name in base_recipes(RECIPES_DIR):
        assert searchpath is None, f"{name}.yaml is included by other recipes, so it must not set hydra.searchpath"
    else:
        assert searchpath is not None and VERL_SEARCHPATH in searchpath, f"{name}.yaml must declare {VERL_SEARCHPATH}"


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_every_key_exists_in_verl_schema(name):
    assert unknown_keys(RECIPES_DIR, name) == []


@pytest.mark.parametrize("name", PROFILES)
def test_values_fit_verl_dataclass_types(name):
    cfg = compose_profile(RECIPES_DIR, name)
    assert type_errors(cfg, set_key_paths(RECIPES_DIR, name), verl_root(RECIPES_DIR, name)) == []


@pytest.mark.parametrize("name", RL_PROFILES)
def test_profile_passes_verl_startup_validation(name):
    if not PROCESSOR_DIR.is_dir():
        pytest.fail(f"{PROCESSOR_DIR} (../shared) is needed: HFModelConfig loads the model config and processor")
    trainer = verl_ppo_startup_checks(compose_profile(RECIPES_DIR, name))
    assert trainer.use_reference_policy is False and trainer.use_critic is False


@pytest.mark.parametrize("name", RL_PROFILES)
def test_profile_with_dapo_filter_passes_verl_startup_validation(name):
    """The DAPO dynamic-sampling option (rise_grpo.yaml) must also be a valid configuration of every profile."""
    trainer = verl_ppo_startup_checks(compose_profile(RECIPES_DIR, name, ["algorithm.filter_groups.enable=true"]))
    assert trainer.replay_buffer.filter_groups_metric == "acc"


#: The overrides docs/passrate.md gives for a run without pass-rate tracking.
TRACKING_OFF = [
    "trainer.checkpoint_callback_class=null",
    "trainer.v1.sampler.custom_sampler.path=null",
    "trainer.v1.sampler.custom_sampler.name=null",
]


@pytest.mark.parametrize("name", RL_PROFILES)
def test_profile_records_pass_rates(name, tmp_path):
    """Stage 1 records pass rates by default: verl builds our sampler and checkpoint callback from the recipe,
    with the tracker directory beside the checkpoints, and building them touches no file."""
    from verl.trainer.ppo.checkpoint_callback import CheckpointCallback
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    from verl_rise.passrate.recorder import PassRateConfig
    from verl_rise.verl_ext.passrate_hooks import PassRateCheckpointCallback, PassRateReplayBuffer

    ckpt = tmp_path / "ckpt"
    cfg = compose_profile(RECIPES_DIR, name, [f"trainer.default_local_dir={ckpt}"])
    config = PassRateConfig.from_mapping(
        OmegaConf.to_container(cfg.trainer.v1.sampler.sampler_kwargs.passrate, resolve=True)
    )
    assert config.dir == f"{ckpt}/passrate"
    trainer = verl_ppo_startup_checks(cfg)
    assert type(trainer.replay_buffer) is PassRateReplayBuffer
    assert type(trainer.checkpoint_callback) is PassRateCheckpointCallback
    assert not ckpt.exists(), "the tracker directory is created at the first training step, not at start-up"
    # Switched off as docs/passrate.md says: verl's own sampler, no callback.
    off = compose_profile(RECIPES_DIR, name, [f"trainer.default_local_dir={ckpt}", *TRACKING_OFF])
    trainer = verl_ppo_startup_checks(off)
    assert type(trainer.replay_buffer) is ReplayBuffer and type(trainer.checkpoint_callback) is CheckpointCallback


@pytest.mark.parametrize("name", RL_RECIPES)
def test_metis_rise_invariants(name):
    from verl.trainer.ppo.utils import need_reference_policy

    cfg = compose_recipe(RECIPES_DIR, name)
    actor = cfg.actor_rollout_ref.actor
    assert cfg.algorithm.adv_estimator == "grpo"
    # No KL anywhere: not in the reward, not as a loss, and so no reference policy is built.
    assert cfg.algorithm.use_kl_in_reward is False
    assert actor.use_kl_loss is False
    assert need_reference_policy(cfg) is False
    # Clip-higher (DAPO): the upper clip range is wider than the lower one.
    assert actor.clip_ratio_high > actor.clip_ratio_low
    assert actor.loss_agg_mode == "token-mean"
    assert cfg.reward.custom_reward_function.path == "pkg://reward_fns.rise"
    assert cfg.reward.custom_reward_function.name == "compute_score"


@pytest.mark.parametrize("name", RL_PROFILES)
def test_sizing_relations(name):
    """Relations between sizes that verl only enforces once the run is on its GPUs (or silently pads)."""
    cfg = compose_profile(RECIPES_DIR, name)
    actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    longest = cfg.data.max_prompt_length + cfg.data.max_response_length
    n_gpus = cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node
    sp = actor.fsdp_config.ulysses_sequence_parallel_size
    # engine_workers.py init_model asserts that the rollout world divides the GPUs.
    assert n_gpus % (rollout.tensor_model_parallel_size * rollout.data_parallel_size) == 0
    assert n_gpus % sp == 0
    dp = n_gpus // sp
    # Mini-batches that do not split evenly over the data-parallel groups are padded with dummy sequences.
    assert cfg.data.train_batch_size % actor.ppo_mini_batch_size == 0
    assert (actor.ppo_mini_batch_size * rollout.n) % dp == 0
    if actor.use_dynamic_bsz:
        # utils/seqlen_balancing.py asserts that one whole sequence fits a micro-batch (budget x SP size).
        assert actor.ppo_max_token_len_per_gpu * sp >= longest
        assert rollout.log_prob_max_token_len_per_gpu * sp >= longest
    if rollout.max_model_len is not None:
        assert rollout.max_model_len >= longest, "vLLM would cut responses short of max_response_length"
        if not rollout.enable_chunked_prefill:
            assert rollout.max_num_batched_tokens >= rollout.max_model_len


def test_allow_list_is_not_stale():
    reference = verl_reference(PPO_ROOT)
    for path in PPO_ALLOWED_ADDED_KEYS:
        assert node_at(reference, path) is None, f"{path} is in verl's schema now: drop it from ALLOWED_ADDED_KEYS"
        assert dataclass_field_type(path) is not None, f"{path} is not a field of its section's verl dataclass"
    for path in PPO_FREE_FORM_DICTS:
        assert node_at(reference, path.rpartition(".")[0]) is not None, f"{path}: parent missing from verl's schema"


def test_sft_allow_list_is_not_stale():
    from verl_rise.verl_ext.sft_dataset import PIXEL_KEYS

    reference = verl_reference(SFT_ROOT)
    for path, (reader, snippet) in SFT_ALLOWED_ADDED_KEYS.items():
        assert node_at(reference, path) is None, f"{path} is in verl's schema now: drop it from SFT_ALLOWED_ADDED_KEYS"
        module, _, attr = reader.rpartition(".")
        source = inspect.getsource(getattr(importlib.import_module(module), attr))
        assert snippet in source, f"{path}: {reader} no longer reads it ({snippet!r} not in its source)"
        if path.startswith("data.mm_processor_kwargs."):
            assert path.rpartition(".")[2] in PIXEL_KEYS
    for path in SFT_FREE_FORM_DICTS:
        parent_path, _, field_name = path.rpartition(".")
        parent = node_at(reference, parent_path)
        assert parent is not None, f"{path}: parent missing from verl's SFT schema"
        assert field_name in typing.get_type_hints(get_class(parent._target_)), f"{path}: not a dataclass field"


def test_recipes_main_prints_the_recipes_dir():
    """``python -m verl_rise.recipes`` runs recipes/__main__.py inside the package; load this checkout's copy."""
    package = "verl_rise_recipes_under_test"
    spec = importlib.util.spec_from_file_location(
        package, RECIPES_DIR / "__init__.py", submodule_search_locations=[str(RECIPES_DIR)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    try:
        spec.loader.exec_module(module)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            runpy.run_module(f"{package}.__main__", run_name="__main__")
    finally:
        sys.modules.pop(package, None)
        sys.modules.pop(f"{package}.__main__", None)
    printed = Path(out.getvalue().strip())
    assert printed == RECIPES_DIR.resolve()
    assert (printed / "rise_grpo_7b.yaml").is_file()


# --------------------------------------------------------------------------------------------------------------
# SFT recipes (stage 2): verl's SFT trainer on a real MATH-Vision SFT row
# --------------------------------------------------------------------------------------------------------------

#: A RISE-format response (the layout of the Metis-RISE system prompt's example) for the SFT rows below.
SFT_RESPONSE = "<think> Count the pieces in the picture one by one. </think><answer> The answer is $\\boxed{B}$ </answer>"


@pytest.fixture(scope="module")
def sft_parquet(tmp_path_factory) -> Path:
    """Two SFT rows as ``python -m verl_rise.sft_data build`` writes them: the RL prompt of a real MATH-Vision row
    (data_prep's converter: Metis-RISE system prompt, user text with ``<image>``, image bytes) + an assistant turn."""
    import pandas as pd

    from data_prep import mathvision

    if not MATHVISION_DIR.is_dir():
        pytest.fail(f"{MATHVISION_DIR} (../shared) is needed for the SFT start-up validation")
    out = tmp_path_factory.mktemp("sft_recipe")
    subset = out / "two.jsonl"
    subset.write_text("".join((MATHVISION_DIR / "train.jsonl").read_text().splitlines(keepends=True)[:2]))
    rl = out / "rl.parquet"
    assert mathvision.main(["-i", str(subset), "--root", str(MATHVISION_DIR), "-o", str(rl), "--no-progress"]) == 0
    rows = pd.read_parquet(rl).to_dict("records")
    sft = [{"messages": [*map(dict, row["prompt"]), {"role": "assistant", "content": SFT_RESPONSE}],
            "images": list(row["images"]), "data_source": row["data_source"]} for row in rows]
    dest = out / "sft.parquet"
    pd.DataFrame(sft).to_parquet(dest)
    return dest


def compose_sft_profile(name: str, train_file: Path, overrides: typing.Sequence[str] = ()) -> DictConfig:
    return compose_profile(RECIPES_DIR, name, [f"data.train_files={train_file}", *overrides])


@pytest.mark.parametrize("name", SFT_PROFILES)
def test_sft_profile_passes_verl_startup_validation(name, sft_parquet):
    from verl_rise.verl_ext.sft_dataset import RiseSFTDataset

    startup = run_sft_startup_validation(compose_sft_profile(name, sft_parquet))
    assert type(startup.dataset) is RiseSFTDataset
    assert startup.engine_cls.__name__ == "FSDPEngineWithLMHead" and startup.engine.strategy == "fsdp2"
    cfg = compose_sft_profile(name, sft_parquet)
    lo, hi = cfg.data.mm_processor_kwargs.min_pixels, cfg.data.mm_processor_kwargs.max_pixels
    for sample in startup.samples:
        # Every image reached the model as pixel patches, resized into the profile's pixel range.
        grid = sample["multi_modal_inputs"]["image_grid_thw"]
        assert grid.shape == (1, 3)
        pixels = int(grid[0, 1] * grid[0, 2]) * 14 * 14
        assert lo <= pixels <= hi
        assert len(sample["input_ids"]) <= cfg.data.max_length
    assert startup.batch["input_ids"].is_nested  # pad_mode no_padding: one nested batch of both rows


def test_sft_trains_only_on_the_assistant_turn(sft_parquet):
    """Metis-RISE SFT learns the response, not the prompt: loss_mask is 1 exactly on the assistant's tokens."""
    startup = run_sft_startup_validation(compose_sft_profile("rise_sft_7b", sft_parquet))
    tokenizer = startup.model.tokenizer
    for sample in startup.samples:
        ids, mask = sample["input_ids"], sample["loss_mask"].bool()
        assert tokenizer.decode(ids[mask]) == SFT_RESPONSE + "<|im_end|>\n"
        assert "<|image_pad|>" in tokenizer.decode(ids[~mask])


@pytest.mark.parametrize("name", SFT_RECIPES)
def test_sft_metis_rise_invariants(name):
    from data_prep.prompts import MAX_PIXELS, MIN_PIXELS

    cfg = compose_recipe(RECIPES_DIR, name)
    # The SFT parquet of verl_rise.sft_data, read by verl-rise's dataset class.
    assert (cfg.data.messages_key, cfg.data.image_key) == ("messages", "images")
    assert cfg.data.custom_cls.path == "pkg://verl_rise.verl_ext.sft_dataset"
    assert cfg.data.custom_cls.name == "RiseSFTDataset"
    # An overlong row stops the run instead of losing its <answer> to truncation.
    assert cfg.data.truncation == "error"
    assert cfg.engine.strategy == "fsdp2"
    assert cfg.optim.lr_scheduler_type in ("cosine", "constant")
    if not name.endswith("_cpu_tiny"):
        # The Metis-RISE model card's pixel range, as in the RL stage.
        assert dict(cfg.data.mm_processor_kwargs) == {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
        assert (cfg.optim.lr, cfg.trainer.total_epochs) == (1.0e-5, 3)


@pytest.mark.parametrize("name", [n for n in SFT_PROFILES if not n.endswith("_cpu_tiny")])
def test_sft_sizing_relations(name):
    """Relations verl's SFT trainer only meets on its GPUs (sft_trainer.py _build_dataloader, engine/utils.py)."""
    cfg = compose_profile(RECIPES_DIR, name)
    n_gpus = cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node
    sp = cfg.engine.ulysses_sequence_parallel_size
    assert n_gpus % sp == 0
    dp = n_gpus // sp
    # The global batch is split evenly over the data-parallel groups (train_batch_size // dp rows each).
    assert cfg.data.train_batch_size % dp == 0 and cfg.data.train_batch_size >= dp
    if cfg.data.use_dynamic_bsz:
        # One whole sequence must fit a micro-batch (token budget x SP size, engine/utils.py:111).
        assert cfg.data.max_token_len_per_gpu * sp >= cfg.data.max_length
    else:
        assert (cfg.data.train_batch_size // dp) % cfg.data.micro_batch_size_per_gpu == 0
    # The SFT sequence holds the longest RL prompt and response of the same model size.
    rl = compose_profile(RECIPES_DIR, name.replace("rise_sft", "rise_grpo"))
    assert cfg.data.max_length >= rl.data.max_prompt_length + rl.data.max_response_length


def test_sft_cpu_profile_sets_what_a_cpu_needs():
    """What the CPU SFT run needs beyond VERL_PLATFORM=cpu (../shared/docs/verl-0.9.1-notes.md, SFT)."""
    cfg = compose_profile(RECIPES_DIR, "rise_sft_cpu_tiny")
    assert cfg.trainer.device == "cpu"
    assert cfg.engine.strategy == "fsdp2" and cfg.engine.use_torch_compile is False
    assert cfg.model.use_remove_padding is False and cfg.model.override_config.attn_implementation == "sdpa"
    assert dict(cfg.engine.mixed_precision) == {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    assert cfg.data.num_workers == 0 and cfg.data.mm_processor_kwargs.max_pixels <= 128 * 28 * 28


# --------------------------------------------------------------------------------------------------------------
# The checks catch what they claim to catch
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def recipes_copy(tmp_path) -> Path:
    """A scratch copy of our recipe files, to add broken recipes beside them."""
    for path in RECIPES_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _write_profile(directory: Path, name: str, body: str, base: str = "rise_grpo") -> None:
    (directory / f"{name}.yaml").write_text(
        f"hydra:\n  searchpath:\n    - {VERL_SEARCHPATH}\ndefaults:\n  - {base}\n  - _self_\n{body}"
    )


def test_misspelt_key_is_caught(recipes_copy):
    _write_profile(recipes_copy, "typo", "actor_rollout_ref:\n  actor:\n    clip_ratio_hgih: 0.3\n")
    # Hydra itself accepts the typo and silently keeps verl's clip_ratio_high:
    cfg = compose_recipe(recipes_copy, "typo")
    assert cfg.actor_rollout_ref.actor.clip_ratio_hgih == 0.3
    assert unknown_keys(recipes_copy, "typo") == ["typo.yaml: actor_rollout_ref.actor.clip_ratio_hgih"]


def test_misspelt_key_in_an_included_recipe_is_caught(recipes_copy):
    """A typo two levels down the defaults chain is reported with the file that holds it."""
    (recipes_copy / "middle.yaml").write_text("defaults:\n  - rise_grpo\n  - _self_\ndata:\n  max_prompt_lenght: 9\n")
    _write_profile(recipes_copy, "top", "trainer:\n  nnodes: 1\n", base="middle")
    assert unknown_keys(recipes_copy, "top") == ["middle.yaml: data.max_prompt_lenght"]


def test_near_miss_of_an_allowed_key_is_caught(recipes_copy):
    _write_profile(recipes_copy, "near", "actor_rollout_ref:\n  rollout:\n    limit_imagess: 1\n")
    assert unknown_keys(recipes_copy, "near") == ["near.yaml: actor_rollout_ref.rollout.limit_imagess"]


def test_wrong_value_type_is_caught():
    name = "rise_grpo_7b"
    cfg = compose_profile(RECIPES_DIR, name, ["actor_rollout_ref.actor.ppo_mini_batch_size=sixteen"])
    errors = type_errors(cfg, set_key_paths(RECIPES_DIR, name))
    assert len(errors) == 1 and errors[0].startswith("actor_rollout_ref.actor.ppo_mini_batch_size='sixteen'")


def test_invalid_value_fails_verl_validation():
    cfg = compose_profile(RECIPES_DIR, "rise_grpo_7b", ["actor_rollout_ref.actor.loss_agg_mode=token_mean"])
    with pytest.raises(Exception, match="loss_agg_mode"):
        verl_ppo_startup_checks(cfg)


def test_search_path_in_an_included_recipe_breaks_composition(recipes_copy):
    """Why the base recipe carries no hydra.searchpath: Hydra rejects it in any config but the primary one."""
    base = recipes_copy / "rise_grpo.yaml"
    base.write_text(f"hydra:\n  searchpath:\n    - {VERL_SEARCHPATH}\n" + base.read_text())
    with pytest.raises(Exception, match="searchpath is only supported from the primary config"):
        compose_recipe(recipes_copy, "rise_grpo_7b")


def test_sft_misspelt_key_is_caught_against_the_sft_schema(recipes_copy):
    """A typo in an SFT profile is judged against sft_trainer_engine, not ppo_trainer (which has no optim section)."""
    _write_profile(recipes_copy, "sft_typo", "optim:\n  lr_sheduler_type: cosine\n", base="rise_sft")
    assert verl_root(recipes_copy, "sft_typo") == SFT_ROOT
    assert unknown_keys(recipes_copy, "sft_typo") == ["sft_typo.yaml: optim.lr_sheduler_type"]


def test_sft_misspelt_pixel_key_is_caught(recipes_copy):
    _write_profile(recipes_copy, "sft_pix", "data:\n  mm_processor_kwargs:\n    max_pixel: 100352\n", base="rise_sft")
    assert unknown_keys(recipes_copy, "sft_pix") == ["sft_pix.yaml: data.mm_processor_kwargs.max_pixel"]


def test_sft_wrong_value_type_is_caught():
    name = "rise_sft_7b"
    cfg = compose_profile(RECIPES_DIR, name, ["optim.lr=fast"])
    errors = type_errors(cfg, set_key_paths(RECIPES_DIR, name) | {"optim.lr": ""}, SFT_ROOT)
    assert len(errors) == 1 and errors[0].startswith("optim.lr='fast'")


@pytest.mark.parametrize("override, error, match", [
    # FSDPOptimizerConfig.__post_init__ asserts constant|cosine (Hydra wraps the bare AssertionError).
    ("optim.lr_scheduler_type=linear", "InstantiationException", "FSDPOptimizerConfig"),
    # SFTTrainer._validate_profiler_interval: the end step must not precede the start step.
    ("trainer.profile_interval=[5,1]", "AssertionError", ""),
    # RiseSFTDataset: only the pixel range is applied, anything else would be silently ignored.
    ("+data.mm_processor_kwargs.do_resize=false", "ValueError", "applies only"),
    # verl's MultiTurnSFTDataset: a sequence longer than max_length with truncation=error.
    ("data.max_length=64", "ValueError", "is larger than"),
])
def test_invalid_sft_value_fails_verl_validation(override, error, match, sft_parquet):
    cfg = compose_sft_profile("rise_sft_7b", sft_parquet, [override])
    with pytest.raises(Exception, match=match) as caught:
        run_sft_startup_validation(cfg)
    assert type(caught.value).__name__ == error


def test_recipe_on_both_trainers_is_refused(recipes_copy):
    (recipes_copy / "both.yaml").write_text("defaults:\n  - rise_grpo\n  - rise_sft\n  - _self_\n")
    with pytest.raises(ValueError, match="exactly one of ppo_trainer/sft_trainer_engine"):
        verl_root(recipes_copy, "both")
