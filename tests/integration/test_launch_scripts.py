"""The launch scripts in examples/ parse, fail clearly on missing paths, and hand the right arguments to verl's
trainers (main_ppo for the RL stage, ``torchrun -m verl.trainer.sft_trainer`` for the SFT stage).

No GPU or Ray cluster is needed: the trainers are run with Hydra's ``--cfg job``, which composes and prints the config
and exits before verl starts anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SCRIPTS = sorted([*EXAMPLES.glob("*.sh"), *EXAMPLES.glob("*.sbatch")])
PATH_VARS = ("TRAIN_FILES", "VAL_FILES", "MODEL_PATH", "CKPT_DIR")
SFT_PATH_VARS = ("TRAIN_FILES", "MODEL_PATH", "CKPT_DIR")
LAUNCH_VARS = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "GPUS_PER_NODE", "VERL_PLATFORM")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in PATH_VARS + LAUNCH_VARS and not k.startswith(("SLURM_", "RISE_"))}
    env["PYTHON"] = sys.executable
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=_env(**env), capture_output=True, text=True, timeout=300, cwd=REPO)


def test_the_scripts_exist():
    names = {p.name for p in SCRIPTS}
    assert {"rise_grpo_7b.sh", "rise_grpo_72b_ray.sh", "rise_grpo_72b.sbatch", "rise_common.sh"} <= names
    assert {"rise_sft_7b.sh", "rise_sft_72b.sh", "rise_sft_cpu_tiny.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_scripts_are_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        if os.environ.get("VERL_RISE_REQUIRE_SHELLCHECK"):  # set by .ci/run, which installs it: never skip in CI
            pytest.fail("shellcheck is not installed, and .ci/run requires it (VERL_RISE_REQUIRE_SHELLCHECK)")
        pytest.skip("shellcheck is not installed (Debian: apt-get install -y shellcheck)")
    result = subprocess.run(["shellcheck", "-x", *map(str, SCRIPTS)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("missing", PATH_VARS)
def test_missing_path_variable_is_named(missing):
    paths = {name: f"/somewhere/{name.lower()}" for name in PATH_VARS if name != missing}
    result = _run(["bash", str(EXAMPLES / "rise_grpo_7b.sh")], **paths)
    assert result.returncode == 2
    assert f"{missing} is not set" in result.stderr


def test_7b_script_passes_paths_and_overrides_to_main_ppo(tmp_path):
    paths = {
        "TRAIN_FILES": "/data/rl/train.parquet",
        "VAL_FILES": "/data/rl/testmini.parquet",
        "MODEL_PATH": "/models/Qwen2.5-VL-7B-Instruct",
        "CKPT_DIR": str(tmp_path / "ckpt"),
    }
    result = _run(
        ["bash", str(EXAMPLES / "rise_grpo_7b.sh"), "trainer.total_epochs=3", "--cfg", "job"],
        RISE_RECIPES_DIR=str(REPO / "recipes"),
        **paths,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = yaml.safe_load(result.stdout)
    assert cfg["data"]["train_files"] == paths["TRAIN_FILES"]
    assert cfg["data"]["val_files"] == paths["VAL_FILES"]
    assert cfg["actor_rollout_ref"]["model"]["path"] == paths["MODEL_PATH"]
    assert cfg["trainer"]["default_local_dir"] == paths["CKPT_DIR"]
    # The command-line override wins over the recipe, and the 7B profile (not just the base) was composed.
    assert cfg["trainer"]["total_epochs"] == 3
    assert cfg["actor_rollout_ref"]["rollout"]["name"] == "vllm"
    assert cfg["trainer"]["experiment_name"] == "rise_grpo_qwen2_5_vl_7b"


def test_bad_recipes_dir_is_reported():
    paths = {name: "x" for name in PATH_VARS}
    result = _run(["bash", str(EXAMPLES / "rise_grpo_7b.sh")], RISE_RECIPES_DIR="/no/such/dir", **paths)
    assert result.returncode == 2
    assert "RISE_RECIPES_DIR=/no/such/dir is not a directory" in result.stderr


def test_ray_script_usage_and_worker_address():
    usage = _run(["bash", str(EXAMPLES / "rise_grpo_72b_ray.sh")])
    assert usage.returncode == 2
    assert "rise_grpo_72b_ray.sh head" in usage.stderr and "worker HEAD_IP:6379" in usage.stderr
    worker = _run(["bash", str(EXAMPLES / "rise_grpo_72b_ray.sh"), "worker"])
    assert worker.returncode == 2 and "worker needs the head's address" in worker.stderr


def test_sbatch_outside_slurm_is_refused():
    result = _run(["bash", str(EXAMPLES / "rise_grpo_72b.sbatch")])
    assert result.returncode != 0
    assert "submit with sbatch from the verl-rise checkout" in result.stderr


@pytest.mark.parametrize("script", ["rise_sft_7b.sh", "rise_sft_72b.sh", "rise_sft_cpu_tiny.sh"])
@pytest.mark.parametrize("missing", SFT_PATH_VARS)
def test_sft_missing_path_variable_is_named(script, missing):
    paths = {name: f"/somewhere/{name.lower()}" for name in SFT_PATH_VARS if name != missing}
    result = _run(["bash", str(EXAMPLES / script)], **paths)
    assert result.returncode == 2
    assert f"{missing} is not set" in result.stderr


@pytest.mark.parametrize("missing", ["NODE_RANK", "MASTER_ADDR"])
def test_sft_72b_needs_the_rendezvous(missing):
    env = {name: f"/somewhere/{name.lower()}" for name in SFT_PATH_VARS}
    env.update({k: v for k, v in {"NODE_RANK": "0", "MASTER_ADDR": "10.0.0.1"}.items() if k != missing})
    result = _run(["bash", str(EXAMPLES / "rise_sft_72b.sh")], **env)
    assert result.returncode == 2 and f"{missing} is not set" in result.stderr


def _sft_job(script: str, tmp_path: Path, *overrides: str, **env: str) -> tuple[dict, subprocess.CompletedProcess]:
    paths = {"TRAIN_FILES": "/data/sft/sft.parquet", "MODEL_PATH": "/models/rl_hf", "CKPT_DIR": str(tmp_path / "ckpt")}
    result = _run(["bash", str(EXAMPLES / script), *overrides, "--cfg", "job"],
                  RISE_RECIPES_DIR=str(REPO / "recipes"), **paths, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = yaml.safe_load(result.stdout)
    assert cfg["data"]["train_files"] == paths["TRAIN_FILES"]
    assert cfg["model"]["path"] == paths["MODEL_PATH"]
    assert cfg["trainer"]["default_local_dir"] == paths["CKPT_DIR"]
    return cfg, result


def test_sft_7b_script_runs_torchrun_with_the_profile(tmp_path):
    cfg, result = _sft_job("rise_sft_7b.sh", tmp_path, "trainer.total_epochs=2", GPUS_PER_NODE="4",
                           VAL_FILES="/data/sft/val.parquet")
    assert "torch.distributed.run --standalone --nnodes=1 --nproc_per_node=4 -m verl.trainer.sft_trainer" in result.stderr
    assert cfg["trainer"]["total_epochs"] == 2  # the command line wins over the recipe
    assert cfg["trainer"]["experiment_name"] == "rise_sft_qwen2_5_vl_7b"
    assert (cfg["trainer"]["nnodes"], cfg["trainer"]["n_gpus_per_node"]) == (1, 4)
    assert cfg["data"]["val_files"] == "/data/sft/val.parquet"


def test_sft_cpu_script_selects_the_cpu_platform(tmp_path):
    cfg, result = _sft_job("rise_sft_cpu_tiny.sh", tmp_path)
    assert "--nproc_per_node=1" in result.stderr
    # verl resolved its platform from VERL_PLATFORM=cpu inside the torchrun rank (verl/plugin/platform).
    assert "Platform override from VERL_PLATFORM: cpu" in result.stderr
    assert cfg["trainer"]["device"] == "cpu" and cfg["trainer"]["experiment_name"] == "rise_sft_cpu_tiny"
    assert cfg["data"]["val_files"] is None
