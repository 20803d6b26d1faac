"""The run configuration, the plan's commands and the pre-flight checks of ``verl-rise run`` (no trainer starts)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT, require
from verl_rise.schedule import STAGES
from verl_rise.schedule.config import ConfigError, load_config, parse_config
from verl_rise.schedule.plan import (
    PlanError,
    PlanOptions,
    RunLayout,
    build_plan,
    check_expert_source,
    check_sft_set,
    latest_checkpoint,
)
from verl_rise.schedule.preflight import preflight
from verl_rise.verl_commands import hydra_list, hydra_value
from verl_rise.schedule.runner import format_dry_run

RECIPES = REPO_ROOT / "recipes"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Real RL parquet files from the problem generator: train (6 rows) and test (4 rows), and the demo expert's
    worked solutions of the training problems."""
    from data_prep import generator
    from verl_rise.demo.expert import write_expert_file

    root = tmp_path_factory.mktemp("data")
    assert generator.main(["--num", "6", "--seed", "0", "--output", str(root / "train.parquet"), "--no-progress"]) == 0
    assert generator.main(["--num", "4", "--seed", "1", "--split", "test", "--output", str(root / "test.parquet"),
                           "--no-progress"]) == 0
    assert write_expert_file(root / "expert.jsonl", 6, 0) == 6
    return root


def _raw(root: Path, patch: dict | None = None) -> dict:
    raw = {
        "run_dir": "run",
        "model": str(QWEN_PROCESSOR),
        "data": {"train": "train.parquet", "held_out": {"gen_test": "test.parquet"}},
        "recipes_dir": str(RECIPES),
        "profiles": {"rl": "rise_grpo_cpu_tiny", "sft": "rise_sft_cpu_tiny"},
        "expert": {"files": ["expert.jsonl"]},
        "launch": {"sft_nproc_per_node": 1},
    }
    raw.update(patch or {})
    return raw


def _config(root: Path, **patch):
    return parse_config(_raw(root, patch), root)


# --------------------------------------------------------------------------------------------------------------
# configuration


def test_config_file_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "run.yaml").write_text(yaml.safe_dump({
        "run_dir": "../runs/x", "model": "/abs/model", "data": {"train": "t.parquet", "held_out": {"a": "h.parquet"}}}))
    cfg = load_config(tmp_path / "sub" / "run.yaml")
    assert cfg.run_dir == (tmp_path / "runs" / "x").resolve()
    assert cfg.model == Path("/abs/model")
    assert cfg.data.train == tmp_path / "sub" / "t.parquet"
    assert cfg.profiles.rl == "rise_grpo_7b" and cfg.sweep.k == 8 and cfg.eval.pass_at_k is None


@pytest.mark.parametrize("patch, message", [
    ({"modle": "x"}, "modle: Extra inputs are not permitted"),
    ({"sweep": {"k": 0}}, "sweep.k: Input should be greater than or equal to 1"),
    ({"data": {"train": "t", "held_out": {}}}, "data.held_out"),
    ({"data": {"train": "t", "held_out": {"bad name": "h"}}}, "held-out set name 'bad name'"),
    ({"overrides": {"rl": ["trainer.total_epochs 2"]}}, "is not a Hydra override"),
    ({"overrides": {"merge_rl": ["x=1"]}}, "overrides.merge_rl"),
    ({"eval": {"pass_at_k": 8, "pass_samples": 4}}, "eval.pass_samples (4) must be >= eval.pass_at_k (8)"),
])
def test_bad_config_names_the_field(data, patch, message):
    with pytest.raises(ConfigError) as info:
        parse_config(_raw(data, patch), data, source="my.yaml")
    assert message in str(info.value) and "my.yaml" in str(info.value)


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("run_dir: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


# --------------------------------------------------------------------------------------------------------------
# the plan


def test_plan_stages_and_runner_owned_keys_come_last(data):
    cfg = _config(data, overrides={"rl": ["trainer.total_training_steps=3"]})
    plan = build_plan(cfg)
    assert [s.name for s in plan] == list(STAGES)
    rl = plan[0].steps[0].shell_argv()
    assert rl[1:3] == ["-m", "verl.trainer.main_ppo"] and rl[rl.index("--config-name") + 1] == "rise_grpo_cpu_tiny"
    assert rl.index("trainer.total_training_steps=3") < rl.index(f"data.train_files={data / 'train.parquet'}")
    assert f'data.val_files=["{data / "test.parquet"}"]' in rl
    assert "trainer.resume_mode=auto" in rl and "trainer.val_before_train=true" in rl
    assert plan[0].steps[0].resumable and plan[5].steps[0].resumable
    sft = plan[5].steps[0].shell_argv()
    assert sft[1:4] == ["-m", "torch.distributed.run", "--standalone"] and "--nproc_per_node=1" in sft
    assert f"model.path={cfg.run_dir / 'merge_rl' / 'hf'}" in sft
    build = plan[4].steps[0].shell_argv()
    assert build[build.index("--expert-file") + 1] == str(data / "expert.jsonl")
    assert build[build.index("--expert-key") + 1] == "prompt_id"


def test_eval_reuses_rl_validation_only_when_comparable(data):
    names = lambda cfg, opts=PlanOptions(): [s.name for s in build_plan(cfg, opts)[7].steps]  # noqa: E731
    assert names(_config(data)) == ["sft_greedy", "collect"]
    assert names(_config(data), PlanOptions(rl_validates_at_end=False)) == ["base_greedy", "rl_greedy",
                                                                             "sft_greedy", "collect"]
    assert names(_config(data, overrides={"eval": ["data.max_response_length=64"]})) == [
        "base_greedy", "rl_greedy", "sft_greedy", "collect"]
    with_k = _config(data, eval={"pass_at_k": 2, "pass_samples": 4})
    steps = build_plan(with_k)[7].steps
    assert [s.name for s in steps] == ["base_sampled", "rl_sampled", "sft_greedy", "sft_sampled", "collect"]
    sampled = steps[0].shell_argv()
    assert "actor_rollout_ref.rollout.val_kwargs.n=4" in sampled
    assert "reward.custom_reward_function.path=pkg://verl_rise.passrate.sweep_reward" in sampled
    collect = steps[-1].shell_argv()
    assert collect[collect.index("--k") + 1] == "2"
    assert f"base={with_k.run_dir / 'rl' / 'metrics'}@first" in collect


def test_hydra_quoting_round_trips_through_hydras_parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    odd = ["/data/a b/train.parquet", "/x/it's.parquet", '/y/q"uote.parquet', "/z/back\\slash,comma=eq.parquet"]
    parser = OverridesParser.create()
    for value in odd:
        [ov] = parser.parse_overrides([f"data.train_files={hydra_value(value)}"])
        assert ov.value() == value
    [ov] = parser.parse_overrides([f"data.val_files={hydra_list(odd)}"])
    assert ov.value() == odd


def test_latest_checkpoint_is_resolved_at_run_time(tmp_path):
    deferred = latest_checkpoint(tmp_path / "ckpt", "actor")
    assert deferred.shell == f"{tmp_path}/ckpt/global_step_$(cat {tmp_path}/ckpt/latest_checkpointed_iteration.txt)/actor"
    with pytest.raises(PlanError, match="no checkpoint to merge"):
        deferred.resolve()
    (tmp_path / "ckpt" / "global_step_3" / "actor").mkdir(parents=True)
    (tmp_path / "ckpt" / "latest_checkpointed_iteration.txt").write_text("3\n")
    assert deferred.resolve() == str(tmp_path / "ckpt" / "global_step_3" / "actor")
    (tmp_path / "ckpt" / "latest_checkpointed_iteration.txt").write_text("4")
    with pytest.raises(PlanError, match="names step 4 but"):
        deferred.resolve()


def test_dry_run_script_is_valid_shell_in_stage_order(data):
    text = format_dry_run(build_plan(_config(data)))
    positions = [text.index(f"# === stage {name}:") for name in STAGES]
    assert positions == sorted(positions)
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    merge = next(line for line in text.splitlines() if "verl.model_merger" in line and "merge_rl/hf" in line)
    words = shlex.split(merge.replace("$(cat", "CAT(").replace(")/actor", "CAT)/actor"))
    assert words[words.index("--backend") + 1] == "fsdp"


def test_expert_source_is_required_once_hard_prompts_exist(data, tmp_path):
    layout = RunLayout(tmp_path)
    layout.export.mkdir(parents=True)
    summary = {"prompts_per_bucket": {"hard": 3, "inconsistent": 1, "solved": 0, "unseen": 0}}
    (layout.export / "summary.json").write_text(json.dumps(summary))
    no_expert = _config(data, expert={})
    with pytest.raises(PlanError, match="3 training prompts are hard .* no expert source"):
        check_expert_source(no_expert, layout)
    check_expert_source(_config(data), layout)  # a file is configured
    summary["prompts_per_bucket"]["hard"] = 0
    (layout.export / "summary.json").write_text(json.dumps(summary))
    check_expert_source(no_expert, layout)  # nothing hard: no expert needed


def test_empty_sft_set_stops_before_sft(tmp_path):
    layout = RunLayout(tmp_path)
    layout.sft_data.mkdir(parents=True)
    (layout.sft_data / "stats.json").write_text(json.dumps({"sft_rows": 0}))
    with pytest.raises(PlanError, match="the SFT set is empty"):
        check_sft_set(layout)
    (layout.sft_data / "stats.json").write_text(json.dumps({"sft_rows": 5}))
    check_sft_set(layout)


# --------------------------------------------------------------------------------------------------------------
# pre-flight: files and keys (no composition)


def test_preflight_file_errors_name_the_field_and_file(data, tmp_path):
    pd.DataFrame({"data_source": ["x"], "prompt": [[{"role": "user", "content": "q"}]]}).to_parquet(
        tmp_path / "no_cols.parquet")
    rows = pd.read_parquet(data / "train.parquet").head(0)
    rows.to_parquet(tmp_path / "empty.parquet")
    (tmp_path / "model").mkdir()
    cfg = _config(data, model=str(tmp_path / "model"),
                  data={"train": str(tmp_path / "no_cols.parquet"),
                        "held_out": {"a": str(tmp_path / "missing.parquet"), "b": str(tmp_path / "empty.parquet")}},
                  expert={"files": [str(tmp_path / "gone.jsonl")]},
                  profiles={"rl": "rise_grpo_nope", "sft": "rise_sft_cpu_tiny"},
                  overrides={"rl": ["data.train_files=/other.parquet"],
                             "sweep": ["actor_rollout_ref.rollout.val_kwargs.n=2"]})
    errors = "\n".join(preflight(cfg, compose_recipes=False).errors)
    assert f"model: {tmp_path / 'model'} has no config.json" in errors
    assert f"data.train: {tmp_path / 'no_cols.parquet'} lacks the columns ['reward_model', 'extra_info']" in errors
    assert f"data.held_out.a: file not found: {tmp_path / 'missing.parquet'}" in errors
    assert f"data.held_out.b: {tmp_path / 'empty.parquet'} has no rows" in errors
    assert f"expert.files: file not found: {tmp_path / 'gone.jsonl'}" in errors
    assert "profiles.rl: recipe rise_grpo_nope.yaml not found" in errors
    assert "overrides.rl: 'data.train_files=/other.parquet' sets data.train_files, which the runner sets" in errors
    assert "overrides.sweep: 'actor_rollout_ref.rollout.val_kwargs.n=2' sets" in errors
    cfg = _config(data, model=str(tmp_path / "nowhere"))
    assert f"model: directory not found: {tmp_path / 'nowhere'}" in preflight(cfg, compose_recipes=False).errors


def test_cli_exit_status_for_a_bad_config(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"run_dir": "r", "model": "m"}))
    out = subprocess.run([sys.executable, "-m", "verl_rise.cli", "run", str(tmp_path / "run.yaml")],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 2 and "data: Field required" in out.stderr


# --------------------------------------------------------------------------------------------------------------
# pre-flight: every command composed against verl's config


@pytest.fixture(scope="module")
def composed(data):
    require(QWEN_PROCESSOR)
    return preflight(_config(data, expert={}), device_check=True)


def test_preflight_composes_the_cpu_schedule(composed):
    assert composed.errors == []
    assert composed.options.rl_validates_at_end is True
    assert any("no expert source" in w for w in composed.warnings)


def test_cpu_sft_profile_runs_its_torchrun_ranks_on_the_cpu_platform(data, composed):
    """rise_sft_cpu_tiny sets trainer.device=cpu; verl picks its platform at import, so the SFT step's environment
    must select verl-rise's CPU platform (a GPU SFT profile leaves verl's auto-detection alone)."""
    assert composed.options.sft_platform == "cpu"
    sft = next(s for s in build_plan(_config(data, expert={}), composed.options) if s.name == "sft")
    assert sft.steps[0].env["VERL_PLATFORM"] == "cpu"
    gpu = preflight(_config(data, profiles={"rl": "rise_grpo_7b", "sft": "rise_sft_7b"}), device_check=False)
    assert gpu.options.sft_platform is None
    sft = next(s for s in build_plan(_config(data, profiles={"rl": "rise_grpo_7b", "sft": "rise_sft_7b"}),
                                     gpu.options) if s.name == "sft")
    assert "VERL_PLATFORM" not in sft.steps[0].env


@pytest.mark.parametrize("overrides, message", [
    ({"rl": ["actor_rollout_ref.actor.clip_ratio_hgih=0.3"]}, "stage rl: recipe rise_grpo_cpu_tiny does not compose"),
    ({"sft": ["optim.lrr=1e-5"]}, "stage sft: recipe rise_sft_cpu_tiny does not compose"),
    ({"rl": ["actor_rollout_ref.actor.ppo_mini_batch_size=3"]}, "stage rl: verl rejects the configuration"),
    ({"rl": ["trainer.save_freq=-1"]}, "merge_rl needs one"),
])
def test_preflight_errors_before_any_trainer_starts(data, overrides, message):
    require(QWEN_PROCESSOR)
    result = preflight(_config(data, overrides=overrides))
    assert any(message in e for e in result.errors), result.errors


def test_preflight_refuses_a_gpu_profile_without_gpus(data):
    require(QWEN_PROCESSOR)
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = preflight(_config(data, profiles={"rl": "rise_grpo_7b", "sft": "rise_sft_7b"}))
    assert any("asks for 8 GPUs and this machine has 0" in e for e in result.errors), result.errors
    assert preflight(_config(data, profiles={"rl": "rise_grpo_7b", "sft": "rise_sft_7b"}),
                     device_check=False).errors == []
