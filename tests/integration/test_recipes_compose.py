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
import importlib.util
import inspect
import io
import runpy
import shutil
import sys
import typing
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from verl_rise.verl_ext.recipe_check import (
    PPO_ALLOWED_ADDED_KEYS,
    PPO_FREE_FORM_DICTS,
    PPO_ROOT,
    SFT_ALLOWED_ADDED_KEYS,
    SFT_FREE_FORM_DICTS,
    SFT_ROOT,
    VERL_SEARCHPATH,
    base_recipes,
    compose_recipe,
    dataclass_field_type,
    included_recipes,
    node_at,
    profiles,
    recipe_names,
    run_sft_startup_validation,
    unknown_keys,
    verl_reference,
    verl_root,
)
from verl_rise.verl_ext import recipe_check
from verl_rise.verl_ext.startup_checks import verl_ppo_startup_checks
from verl_rise.verl_ext.value_types import value_type_errors

REPO = Path(__file__).resolve().parents[2]
RECIPES_DIR = REPO / "recipes"
PROCESSOR_DIR = (REPO / ".." / "shared" / "models" / "qwen2.5-vl-7b-instruct-processor").resolve()
MATHVISION_DIR = (REPO / ".." / "shared" / "data" / "mathvision").resolve()
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



def compose_profile(recipes_dir: Path, name: str, overrides: typing.Sequence[str] = ()) -> DictConfig:
    """A runnable profile with the placeholder paths of these tests (the model path: the real processor files)."""
    return recipe_check.compose_profile(recipes_dir, name, PLACEHOLDERS, overrides)


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
    searchpath = (recipe_check.load_yaml(RECIPES_DIR / f"{name}.yaml").get("hydra") or {}).get("searchpath")
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
    assert value_type_errors(cfg) == []


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
    errors = value_type_errors(cfg)
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
    errors = value_type_errors(cfg)
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
