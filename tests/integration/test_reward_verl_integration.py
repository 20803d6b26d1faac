"""The RISE reward inside verl's own machinery: its loader (pkg:// and file path), its reward manager
(which calls sync reward functions from executor threads), and a Ray actor."""

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from tests.support.paths import REPO_ROOT

RESPONSE = "<think>The clock shows a quarter past three.</think><answer>The time is $\\boxed{3:15}$</answer>"
SLOW_RESPONSE = "<think>expand</think><answer>\\boxed{(x+1)^{9999}}</answer>"


def _verl_reward_fn(path: str, **reward_kwargs):
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create(
        {"reward": {"custom_reward_function": {"path": path, "name": "compute_score", "reward_kwargs": reward_kwargs}}}
    )
    return get_custom_reward_fn(config)


def test_pkg_path_through_verls_loader_applies_reward_kwargs():
    fn = _verl_reward_fn("pkg://reward_fns.rise", acc_weight=0.5, format_weight=0.5)
    good = fn(data_source="s", solution_str="<think>t</think><answer>\\boxed{7}</answer>", ground_truth="7", extra_info={})
    no_format = fn(data_source="s", solution_str="so \\boxed{7}", ground_truth="7", extra_info={})
    assert (good["score"], good["acc"], good["format"]) == (1.0, 1.0, 1.0)
    assert (no_format["score"], no_format["acc"], no_format["format"]) == (0.5, 1.0, 0.0)


def _data_proto(tokenizer, response: str, ground_truth: str, extra_info: dict):
    from verl import DataProto

    prompt_ids = tokenizer("What time is it?", return_tensors="pt").input_ids[0]
    response_ids = tokenizer(response, return_tensors="pt").input_ids[0]
    pad = 8
    responses = torch.cat([response_ids, torch.full((pad,), tokenizer.pad_token_id or 0)])
    attention = torch.cat([torch.ones(len(prompt_ids) + len(response_ids)), torch.zeros(pad)]).long()
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_ids[None],
            "responses": responses[None],
            "attention_mask": attention[None],
        },
        non_tensors={
            "data_source": ["mathvision"],
            "reward_model": [{"style": "rule", "ground_truth": ground_truth}],
            "extra_info": [extra_info],
        },
    )


def test_verl_reward_manager_scores_a_tokenized_rollout(qwen_tokenizer):
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    fn = _verl_reward_fn("pkg://reward_fns.rise")
    manager = NaiveRewardManager(OmegaConf.create({}), qwen_tokenizer, fn)
    options = ["2:45", "3:15", "3:45", "9:15", "12:15"]
    data = _data_proto(qwen_tokenizer, RESPONSE.replace("3:15", "B"), "B", {"index": 0, "options": options})
    out = manager.loop.run_until_complete(manager.run_single(data))
    assert out["reward_score"] == pytest.approx(1.0)
    assert out["reward_extra_info"]["acc"] == 1.0 and out["reward_extra_info"]["pred"] == "B"


def test_verl_reward_manager_thread_path_respects_the_hard_limit(qwen_tokenizer):
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    fn = _verl_reward_fn("pkg://reward_fns.rise", timeout_s=1.0)
    manager = NaiveRewardManager(OmegaConf.create({}), qwen_tokenizer, fn)
    data = _data_proto(qwen_tokenizer, SLOW_RESPONSE, "1", {"index": 0})
    out = manager.loop.run_until_complete(asyncio.wait_for(manager.run_single(data), timeout=90))
    assert out["reward_extra_info"]["reason"] == "timeout"
    assert out["reward_score"] == pytest.approx(0.1)  # format only


def test_file_path_loading_works_without_the_rest_of_verl_rise(tmp_path):
    copy = tmp_path / "elsewhere" / "reward_fns"
    shutil.copytree(REPO_ROOT / "reward_fns", copy, ignore=shutil.ignore_patterns("__pycache__"))
    script = f"""
import json, sys
from omegaconf import OmegaConf
from verl.trainer.ppo.reward import get_custom_reward_fn
cfg = OmegaConf.create({{"reward": {{"custom_reward_function": {{"path": {str(copy / "rise.py")!r}, "name": "compute_score"}}}}}})
fn = get_custom_reward_fn(cfg)
r = fn(data_source="s", solution_str="<think>t</think><answer>\\\\boxed{{\\\\sqrt{{4}}}}</answer>", ground_truth="2", extra_info=None)
print(json.dumps({{"r": r, "file": sys.modules["reward_fns"].__file__, "verl_rise": "verl_rise" in sys.modules}}))
"""
    env = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": "none"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["r"]["acc"] == 1.0 and result["r"]["score"] == pytest.approx(1.0)
    assert result["file"].startswith(str(copy))
    assert result["verl_rise"] is False


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def test_hard_limit_inside_a_ray_actor_from_executor_threads(ray_local):
    ray = ray_local

    @ray.remote
    class RewardActor:
        async def score(self, response, truth, timeout_s):
            from reward_fns import compute_score

            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, lambda: compute_score("s", response, truth, timeout_s=timeout_s))

    actor = RewardActor.remote()
    slow, fast = ray.get(
        [actor.score.remote(SLOW_RESPONSE, "1", 1.0), actor.score.remote(RESPONSE.replace("3:15", "\\sqrt{9}"), "3", 30.0)],
        timeout=120,
    )
    assert slow["reason"] == "timeout" and slow["acc"] == 0.0
    assert fast["acc"] == 1.0
