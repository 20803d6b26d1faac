"""Pre-flight checks value types against verl's config dataclasses, as it checks keys (issue 14, item 14):
``optim.lr=abc`` is an error naming the key, the value and the expected type, before any trainer starts.
"""

from __future__ import annotations

from tests.support.paths import QWEN_PROCESSOR, require
from tests.integration.test_schedule_config import _config, data  # noqa: F401,F811 - the module-scoped generated-data fixture
from verl_rise.schedule.preflight import preflight


def test_preflight_refuses_values_of_the_wrong_type(data):  # noqa: F811
    require(QWEN_PROCESSOR)
    overrides = {"rl": ["actor_rollout_ref.actor.optim.lr=abc", "actor_rollout_ref.actor.use_kl_loss=maybe",
                        "actor_rollout_ref.actor.ppo_epochs=1.5"],
                 "sweep": ["actor_rollout_ref.rollout.temperature=hot"],
                 "sft": ["optim.lr=abc"]}
    result = preflight(_config(data, overrides=overrides), device_check=False)
    # The RL overrides also go into the sweep and the SFT model's evaluation (verl validation runs): one message.
    rl = "stages rl, sweep, eval/sft_greedy"
    assert result.errors == [
        f"{rl}: actor_rollout_ref.actor.use_kl_loss='maybe' is a str; verl's FSDPActorConfig.use_kl_loss is a bool",
        f"{rl}: actor_rollout_ref.actor.ppo_epochs=1.5 is a float; verl's FSDPActorConfig.ppo_epochs is an int",
        f"{rl}: actor_rollout_ref.actor.optim.lr='abc' is a str; verl's FSDPOptimizerConfig.lr is a float",
        "stage sweep: actor_rollout_ref.rollout.temperature='hot' is a str; verl's RolloutConfig.temperature is a "
        "float",
        "stage sft: optim.lr='abc' is a str; verl's FSDPOptimizerConfig.lr is a float",
    ]  # critic.ppo_epochs copies actor's by interpolation: not reported twice


def test_value_types_accept_what_verl_accepts():
    from omegaconf import OmegaConf

    from verl_rise.schedule.value_types import value_type_errors

    target = "verl.workers.config.FSDPOptimizerConfig"
    ok = OmegaConf.create({"optim": {"_target_": target, "lr": 1, "min_lr_ratio": None, "weight_decay": 0.01,
                                     "betas": [0.9, 0.999], "clip_grad": 1.0, "lr_scheduler_type": "cosine"}})
    assert value_type_errors(ok) == []  # an int where a float goes, None where Optional, a list for a tuple/list
    bad = OmegaConf.create({"optim": {"_target_": target, "lr": True, "betas": "0.9", "total_training_steps": 2.0}})
    assert value_type_errors(bad) == [
        "optim.lr=True is a bool; verl's FSDPOptimizerConfig.lr is a float",
        "optim.betas='0.9' is a str; verl's FSDPOptimizerConfig.betas is a tuple[float, float]",
        "optim.total_training_steps=2.0 is a float; verl's FSDPOptimizerConfig.total_training_steps is an int",
    ]
    # An interpolation is checked as it resolves, and named; a copy of a value already reported is not repeated.
    ref = OmegaConf.create({"x": "abc", "optim": {"_target_": target, "lr": "${x}"},
                            "optim2": {"_target_": target, "lr": "${oc.select:optim.lr,1}"}})
    assert value_type_errors(ref) == ["optim.lr='abc' (from ${x}) is a str; verl's FSDPOptimizerConfig.lr is a float"]
    # A nested dataclass without _target_ is checked against the field's annotation (ActorConfig.optim).
    actor = OmegaConf.create({"_target_": "verl.workers.config.FSDPActorConfig", "optim": {"lr": "abc"}})
    assert value_type_errors(actor) == ["optim.lr='abc' is a str; verl's OptimizerConfig.lr is a float"]
