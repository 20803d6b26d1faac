"""The ``verl.plugins`` entry point: what ``import verl`` runs in every process (driver, Ray workers, torchrun ranks).

Importing it imports every module that defines registration steps, then runs the steps once
(:func:`verl_rise.verl_ext.registry.load`; their outcome is :data:`verl_rise.verl_ext.registry.STATE`).
"""

from __future__ import annotations

import functools
from typing import Any

from verl_rise.verl_ext import cpu_backend  # noqa: F401  (CPU platform + hf rollout registration steps)
from verl_rise.verl_ext import nccl_timeout  # noqa: F401  (actor_rollout_ref.nccl_timeout, unread by verl 0.9.1's engine workers)
from verl_rise.verl_ext import replay_poll  # noqa: F401  (VERL_RISE_REPLAY_POLL_S: the trainer's rollout polling)
from verl_rise.verl_ext import vision_freeze  # noqa: F401  (actor.freeze_vision_tower, unimplemented in verl 0.9.1)
from verl_rise.verl_ext.registry import check_requested, load, registration_step


def _asks_for_rise_reward(cfg: Any) -> bool:
    return str(cfg.reward.custom_reward_function.path or "").startswith("pkg://reward_fns")


@registration_step("reward_fns", requested_by=_asks_for_rise_reward, feature="the RISE reward (pkg://reward_fns.*)")
def _check_reward_fns() -> None:
    # Importing is the check: a missing math-verify should show up at start-up, not in the first reward call.
    import reward_fns  # noqa: F401


@registration_step("require_features")
def _wrap_validate_config() -> None:
    # main_ppo's driver calls validate_config (trainer/main_ppo.py:177) before it builds any worker; main_ppo imports
    # the name after `import verl` has loaded this plugin, so it gets the wrapped function. This replaces nothing of
    # verl's logic: the wrapper checks our registration steps, then calls verl's function unchanged.
    import verl.utils.config as verl_config

    original = verl_config.validate_config
    if getattr(original, "_verl_rise_requests", False):
        return

    @functools.wraps(original)
    def validate_config(*args, **kwargs):
        config = kwargs.get("config", args[0] if args else None)
        if config is not None:
            check_requested(config)
        return original(*args, **kwargs)

    validate_config._verl_rise_requests = True
    verl_config.validate_config = validate_config


load()
