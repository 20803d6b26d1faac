"""The ``verl.plugins`` entry point: what ``import verl`` runs in every process (driver, Ray workers, torchrun ranks).

Importing it imports every module that defines registration steps, then runs the steps once
(:func:`verl_rise.verl_ext.registry.load`; their outcome is :data:`verl_rise.verl_ext.registry.STATE`).
"""

from __future__ import annotations

from verl_rise.verl_ext import cpu_backend  # noqa: F401  (CPU platform + hf rollout registration steps)
from verl_rise.verl_ext import vision_freeze  # noqa: F401  (actor.freeze_vision_tower, unimplemented in verl 0.9.1)
from verl_rise.verl_ext.registry import load, registration_step


@registration_step("reward_fns")
def _check_reward_fns() -> None:
    # Importing is the check: a missing math-verify should show up at start-up, not in the first reward call.
    import reward_fns  # noqa: F401


load()
