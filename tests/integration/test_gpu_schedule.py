"""GPU readiness of the schedule (issue 13): what would stop or crash a GPU run is caught before it starts.

No GPU is needed: every check composes the real recipes against verl 0.9.1's config and reads real parquet files.
Rows of the issue's table: 1 (multi-node SFT launch), 2 (SFT max_length against the built set), 3 (images per row
against the rollout's limit), 4 (validation batch bound of the sweep and eval runs).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support.paths import QWEN_PROCESSOR, REPO_ROOT, require
from verl_rise.schedule.config import ConfigError, parse_config
from verl_rise.schedule.plan import Deferred, PlanError, PlanOptions, RunLayout, build_plan, check_sft_set
from verl_rise.schedule.preflight import compose, hydra_call, max_images_per_row, preflight
from verl_rise.schedule.runner import format_dry_run

RECIPES = REPO_ROOT / "recipes"
EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Real RL parquet files from the problem generator (one image per row) and a copy whose row 2 has 2 images."""
    from data_prep import generator

    root = tmp_path_factory.mktemp("gpu_data")
    assert generator.main(["--num", "4", "--seed", "0", "--output", str(root / "train.parquet"), "--no-progress"]) == 0
    assert generator.main(["--num", "3", "--seed", "1", "--split", "test", "--output", str(root / "test.parquet"),
                           "--no-progress"]) == 0
    rows = pd.read_parquet(root / "train.parquet")
    images = list(rows["images"])
    images[2] = list(images[2]) * 2
    rows["images"] = images
    rows.to_parquet(root / "two_images.parquet")
    return root


def _raw(root: Path, **patch) -> dict:
    raw = {
        "run_dir": str(root / "run"),
        "model": str(QWEN_PROCESSOR),
        "data": {"train": str(root / "train.parquet"), "held_out": {"gen_test": str(root / "test.parquet")}},
        "recipes_dir": str(RECIPES),
        "profiles": {"rl": "rise_grpo_7b", "sft": "rise_sft_7b"},
    }
    raw.update(patch)
    return raw


def _config(root: Path, **patch):
    return parse_config(_raw(root, **patch), root)


def _sft_step(config, options=PlanOptions()):
    return next(s for s in build_plan(config, options) if s.name == "sft").steps[0]


# ---------------------------------------------------------------------------------------------------------------
# Row 1: a 72B SFT profile (4 nodes) is never launched on one node


def test_72b_sft_profile_launched_single_node_is_a_preflight_error(data):
    require(QWEN_PROCESSOR)
    single = preflight(_config(data, profiles={"rl": "rise_grpo_7b", "sft": "rise_sft_72b"}), device_check=False)
    assert any("SFT profile rise_sft_72b is sized for trainer.nnodes=4" in e and "launch.sft_nnodes=1" in e
               for e in single.errors), single.errors
    multi = preflight(_config(data, profiles={"rl": "rise_grpo_7b", "sft": "rise_sft_72b"},
                              launch={"sft_nnodes": 4, "sft_launcher": "srun"}), device_check=False)
    assert multi.errors == []


def test_multi_node_sft_commands_run_as_printed(data, monkeypatch):
    """torchrun with a c10d rendezvous across nodes; node ranks come from the rendezvous, so the printed command is
    the same on every node. The endpoint comes from the run config, else from MASTER_ADDR/MASTER_PORT or (srun) the
    allocation's first node, resolved when the step starts."""
    fixed = _sft_step(_config(data, launch={"sft_nnodes": 4, "sft_nproc_per_node": 8,
                                            "sft_rdzv_endpoint": "node001:29400"}))
    argv = fixed.shell_argv()
    head = argv[:argv.index("verl.trainer.sft_trainer") - 1]
    assert head[1:] == ["-m", "torch.distributed.run", "--nnodes=4", "--rdzv_backend=c10d",
                        "--rdzv_endpoint=node001:29400", head[-2], "--nproc_per_node=8"]
    assert head[-2].startswith("--rdzv_id=verl-rise-sft-") and "--standalone" not in argv
    assert "start this same command on each of the 4 nodes" in fixed.note

    env_step = _sft_step(_config(data, launch={"sft_nnodes": 2}))
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(PlanError, match="launch.sft_rdzv_endpoint"):
        env_step.resolved_argv()
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.7")
    monkeypatch.setenv("MASTER_PORT", "29555")
    assert "--rdzv_endpoint=10.0.0.7:29555" in env_step.resolved_argv()
    # What --dry-run prints expands the same way in a shell.
    deferred = next(a for a in env_step.argv if isinstance(a, Deferred))
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    echoed = subprocess.run(["bash", "-c", f'printf "%s" "{deferred.shell}"'], env={**env, "MASTER_ADDR": "10.0.0.7"},
                            capture_output=True, text=True)
    assert echoed.stdout == "--rdzv_endpoint=10.0.0.7:29500"
    unset = subprocess.run(["bash", "-c", f'printf "%s" "{deferred.shell}"'], env=env, capture_output=True, text=True)
    assert unset.returncode != 0 and "set MASTER_ADDR or launch.sft_rdzv_endpoint" in unset.stderr
    srun = _sft_step(_config(data, launch={"sft_nnodes": 4, "sft_launcher": "srun"})).shell_argv()
    assert srun[:4] == ["srun", "--nodes=4", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert any(w.startswith("--rdzv_endpoint=$(scontrol show hostnames") for w in srun)


def test_rendezvous_endpoint_must_be_host_port(data):
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        _config(data, launch={"sft_nnodes": 2, "sft_rdzv_endpoint": "node001"})


def test_dry_run_of_the_72b_example_prints_a_runnable_multi_node_sft(data):
    """examples/rise_72b.yaml with its paths pointed at real files: the pre-flight passes and the printed SFT
    command starts torchrun on all 4 nodes of the allocation (srun), with a rendezvous across them."""
    require(QWEN_PROCESSOR)
    raw = yaml.safe_load((EXAMPLES / "rise_72b.yaml").read_text())
    raw.update(run_dir=str(data / "run72"), model=str(QWEN_PROCESSOR), recipes_dir=str(RECIPES),
               data={"train": str(data / "train.parquet"), "held_out": {"t": str(data / "test.parquet")}})
    # The example's benchmark files are the user's downloads; this test is about the SFT launch.
    raw["eval"] = {k: v for k, v in raw.get("eval", {}).items() if k != "benchmarks"}
    config = parse_config(raw, EXAMPLES)
    result = preflight(config, device_check=False)
    assert result.errors == [], result.errors
    text = format_dry_run(build_plan(config, result.options))
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    sft = next(line for line in text.splitlines() if "verl.trainer.sft_trainer" in line)
    words = shlex.split(sft.replace("$(", "CMD(").replace('"$SLURM_JOB_NODELIST"', "NODELIST"))
    words = [w for w in words if "=" not in w.split(" ")[0] or w.startswith("-")]  # drop VAR=value prefixes
    assert words[:4] == ["srun", "--nodes=4", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert "--nnodes=4" in words and "--nproc_per_node=8" in words and "--rdzv_backend=c10d" in words
    assert words[words.index("--config-name") + 1] == "rise_sft_72b"


# ---------------------------------------------------------------------------------------------------------------
# Row 3: more images in a row than the rollout allows


def test_two_image_row_under_limit_images_1_is_a_preflight_error(data):
    require(QWEN_PROCESSOR)
    assert max_images_per_row(data / "two_images.parquet") == (2, 2)
    assert max_images_per_row(data / "train.parquet") == (1, 0)
    result = preflight(_config(data, data={"train": str(data / "two_images.parquet"),
                                           "held_out": {"gen_test": str(data / "test.parquet")}}), device_check=False)
    assert any(f"data.train: {data / 'two_images.parquet'} row 2 has 2 images" in e
               and "limit_images=1" in e for e in result.errors), result.errors
    raised = preflight(_config(data, data={"train": str(data / "two_images.parquet"),
                                           "held_out": {"gen_test": str(data / "test.parquet")}},
                               overrides={"rl": ["actor_rollout_ref.rollout.limit_images=2"]}), device_check=False)
    assert raised.errors == []


# ---------------------------------------------------------------------------------------------------------------
# Row 4: the sweep and eval validation runs are batched


def test_sweep_and_eval_validation_batches_are_bounded(data):
    require(QWEN_PROCESSOR)
    config = _config(data, sweep={"k": 8}, eval={"pass_at_k": 4, "pass_samples": 16, "reuse_rl_validation": False},
                     launch={"val_batch_responses": 512})
    plan = {s.name: s for s in build_plan(config)}
    sweep = plan["sweep"].steps[0]
    steps = {s.name: s for s in plan["eval"].steps}
    cases = [(sweep, 64), (steps["base_greedy"], 512), (steps["base_sampled"], 32)]
    for step, expected in cases:
        _, name, overrides = hydra_call(step.shell_argv())
        cfg = compose(str(RECIPES), name, [o.replace(str(config.run_dir / "merge_rl" / "hf"), str(QWEN_PROCESSOR))
                                           for o in overrides])
        # What verl's v1 trainer uses as the validation dataloader's batch size (trainer_base.py:754).
        assert cfg.data.val_batch_size == expected, step.name
    refused = preflight(_config(data, overrides={"sweep": ["data.val_batch_size=100000"]}), compose_recipes=False)
    assert any("sets data.val_batch_size, which the runner sets" in e for e in refused.errors)


# ---------------------------------------------------------------------------------------------------------------
# Row 2: the SFT step refuses a set whose longest row exceeds the profile's max_length


def test_sft_precheck_compares_the_longest_row_with_max_length(data, tmp_path):
    require(QWEN_PROCESSOR)
    layout = RunLayout(tmp_path)
    layout.sft_data.mkdir(parents=True)
    stats = {"sft_rows": 3, "tokens": {"max_total": 21505}}
    (layout.sft_data / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(PlanError, match="longest SFT row has 21505 tokens .*max_length is 21504"):
        check_sft_set(layout, 21504)
    check_sft_set(layout, 21505)
    (layout.sft_data / "stats.json").write_text(json.dumps({"sft_rows": 3, "tokens": None}))
    with pytest.raises(PlanError, match="no token lengths"):
        check_sft_set(layout, 21504)
    # The pre-flight hands the SFT profile's max_length and pixel range to the build and to that check.
    result = preflight(_config(data), device_check=False)
    assert result.options.sft_max_length == 21504 and result.options.sft_pixels == (100352, 12845056)
    build = next(s for s in build_plan(_config(data), result.options) if s.name == "sft_data").steps[0].shell_argv()
    assert build[build.index("--max-length") + 1] == "21504"
    assert build[build.index("--min-pixels") + 1] == "100352" and build[build.index("--max-pixels") + 1] == "12845056"
